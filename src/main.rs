fn main() {
    lamina_app::mount();
}
