//! CVAT for images 1.1 XML, read from a fixture written by hand from CVAT's format (its XML dumper:
//! `rle` is ", "-separated runs over a box of `width = right − left + 1`, row-major from a background
//! run; ellipses are `cx cy rx ry`; boxes and ellipses turn by `rotation` degrees clockwise on screen).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use lamina_core::mask::Mask;
use lamina_interop::cvat::read;
use lamina_interop::foreign::{ForeignImage, ForeignLabels};

const FIXTURE: &str = include_str!("fixtures/cvat/annotations.xml");

fn fixture() -> ForeignLabels {
    read(FIXTURE).unwrap()
}

fn image<'a>(labels: &'a ForeignLabels, name: &str) -> &'a ForeignImage {
    labels.images.iter().find(|i| i.name == name).unwrap()
}

/// The mask of instance `index` of an image, at the image's size.
fn mask(image: &ForeignImage, index: usize) -> Mask {
    let (w, h) = (image.width.unwrap(), image.height.unwrap());
    image.instances[index].shape.to_mask(w, h).unwrap()
}

fn classes(image: &ForeignImage) -> Vec<Option<&str>> {
    image
        .instances
        .iter()
        .map(|i| i.class_name.as_deref())
        .collect()
}

#[test]
fn images_keep_the_file_order_names_and_sizes() {
    let labels = fixture();
    // Listed with ids 1, 0, 2: the order is the file's, the ids play no part.
    let listed: Vec<_> = labels
        .images
        .iter()
        .map(|i| (i.name.as_str(), i.width, i.height, i.instances.len()))
        .collect();
    assert_eq!(
        listed,
        [
            ("subset/b.png", Some(40), Some(24), 3),
            ("a.png", Some(32), Some(32), 4),
            ("empty.png", Some(16), Some(16), 0),
        ]
    );
}

#[test]
fn label_colours_come_from_the_meta_and_a_label_without_one_has_none() {
    let labels = fixture();
    let colors: Vec<_> = labels
        .class_colors
        .iter()
        .map(|(n, c)| (n.as_str(), *c))
        .collect();
    // "grade" is the name of an attribute inside a label, not a label.
    assert_eq!(
        colors,
        [
            ("Inflammatory", [0x33, 0xdd, 0xff]),
            ("Neoplastic", [0xff, 0x33, 0x33])
        ]
    );
}

#[test]
fn a_polygon_touching_itself_at_a_vertex_fills_both_lobes() {
    let labels = fixture();
    let a = image(&labels, "a.png");
    assert_eq!(
        classes(a),
        [
            Some("Neoplastic"),
            Some("Inflammatory"),
            Some("Connective"),
            Some("Mitosis")
        ]
    );
    // Two 4×4 squares, [2, 6)² and [6, 10)², meeting at the vertex (6, 6): 16 + 16 pixel centres.
    let m = mask(a, 0);
    assert_eq!(m.area(), 32);
    assert!(m.get(2, 2) && m.get(5, 5) && m.get(6, 6) && m.get(9, 9));
    assert!(!m.get(6, 5) && !m.get(5, 6) && !m.get(10, 10));
    assert_eq!(a.instances[0].at, "polygon 1 (line 58)");
}

#[test]
fn a_box_holds_the_pixels_whose_centre_it_covers() {
    let labels = fixture();
    let a = image(&labels, "a.png");
    // x in [20.4, 25.6): centres 20.5 … 25.5 are columns 20..=25 (6); y in [3, 7): rows 3..=6 (4).
    let m = mask(a, 1);
    assert_eq!(m.area(), 24);
    assert!(m.get(20, 3) && m.get(25, 6));
    assert!(!m.get(19, 3) && !m.get(26, 3) && !m.get(20, 7));
}

#[test]
fn a_mask_starting_with_foreground_at_the_image_edge() {
    let labels = fixture();
    let a = image(&labels, "a.png");
    // rle "0, 3, 2, 3, 2, 2" over the 4×3 box at (28, 29), row-major, starting with 0 background:
    //   y=29: ###.    y=30: .###    y=31: ..##     → 3 + 3 + 2 = 8 pixels, the last at (31, 31).
    let m = mask(a, 2);
    assert_eq!(m.area(), 8);
    assert!(m.get(28, 29) && m.get(30, 29) && m.get(29, 30) && m.get(31, 30));
    assert!(m.get(30, 31) && m.get(31, 31));
    assert!(!m.get(31, 29) && !m.get(28, 30) && !m.get(29, 31) && !m.get(27, 29));
}

#[test]
fn a_label_missing_from_the_meta_is_kept_by_name() {
    let labels = fixture();
    let a = image(&labels, "a.png");
    // "Mitosis" is not among the meta's labels: the instance keeps the name (the import plan maps it
    // or says it skips it), without a colour.
    assert_eq!(a.instances[3].class_name.as_deref(), Some("Mitosis"));
    assert!(!labels.class_colors.contains_key("Mitosis"));
    // rle "2, 3, 1" over the 3×2 box at (10, 20): y=20: ..#   y=21: ##.   → (12, 20), (10, 21), (11, 21).
    let m = mask(a, 3);
    assert_eq!(m.area(), 3);
    assert!(m.get(12, 20) && m.get(10, 21) && m.get(11, 21));
    assert!(!m.get(10, 20) && !m.get(12, 21));
    assert_eq!(a.instances[3].at, "mask 2 (line 67)");
}

#[test]
fn ellipses_hold_the_pixels_whose_centre_is_inside() {
    let labels = fixture();
    let b = image(&labels, "subset/b.png");
    assert_eq!(
        classes(b),
        [Some("Neoplastic"), Some("Neoplastic"), Some("Inflammatory")]
    );
    // Centre (20, 10), radii 3 and 2: centres are at dx, dy ∈ ±0.5, ±1.5, ±2.5 from it. Rows with
    // |dy| = 0.5 keep |dx| ≤ 3·√(1 − 1/16) ≈ 2.90, six pixels each; rows with |dy| = 1.5 keep
    // |dx| ≤ 3·√(1 − 9/16) ≈ 1.98, four each: 2·6 + 2·4 = 20, in columns 17..=22 and rows 8..=11.
    let m = mask(b, 0);
    assert_eq!(m.area(), 20);
    assert_eq!(m.bbox(), [17, 8, 6, 4]);
    assert!(m.get(17, 10) && m.get(18, 8));
    assert!(!m.get(17, 8) && !m.get(16, 10));
    // The same ellipse turned 90°: 4 columns (6..=9) by 6 rows (9..=14).
    let m = mask(b, 1);
    assert_eq!(m.area(), 20);
    assert_eq!(m.bbox(), [6, 9, 4, 6]);
    assert!(m.get(6, 12) && m.get(8, 9));
    assert!(!m.get(5, 12) && !m.get(8, 8));
}

#[test]
fn a_rotated_box_turns_clockwise_on_screen() {
    let labels = fixture();
    let b = image(&labels, "subset/b.png");
    // The 8×2 box centred at (14, 17), turned 45°: a pixel centre is inside when, in the box's own
    // axes, |u| = |dx + dy|/√2 ≤ 4 and |v| = |dy − dx|/√2 ≤ 1, with dx, dy half-integers, so k = dx + dy
    // and m = dy − dx are integers of opposite parity: m = 0 with odd |k| ≤ 5 (6 pixels), m = ±1 with
    // even |k| ≤ 4 (5 each): 16 pixels.
    let m = mask(b, 2);
    assert_eq!(m.area(), 16);
    // Clockwise (y down) takes the long axis to down-right: (16, 19) is in, its mirror (16, 14) is not.
    assert!(m.get(16, 19) && m.get(11, 14) && m.get(14, 17));
    assert!(!m.get(16, 14) && !m.get(11, 19));
}

#[test]
fn lines_points_tags_and_skeletons_are_skipped_with_why() {
    let labels = fixture();
    assert_eq!(
        labels.skipped,
        [
            "image 'subset/b.png', skeleton 1 (line 50): a skeleton is keypoints, not an area",
            "image 'a.png', polyline 1 (line 65): a polyline is a line, not an area",
            "image 'a.png', points 1 (line 68): points are not an area",
            "image 'a.png', tag 1 (line 70): a tag labels the whole image, not an area",
        ]
    );
    assert_eq!(labels.instance_count(), 7);
}

/// A minimal file around one image's shapes.
fn one_image(shapes: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotations>\n<version>1.1</version>\n\
         <image id=\"0\" name=\"a.png\" width=\"32\" height=\"32\">\n{shapes}\n</image>\n</annotations>\n"
    )
}

fn error(xml: &str) -> String {
    read(xml).unwrap_err().to_string()
}

#[test]
fn a_bad_point_is_named_with_its_image_shape_and_line() {
    let xml = one_image(
        "<polygon label=\"x\" points=\"1,1;5,1;5,5\"/>\n<polygon label=\"x\" points=\"1,1;12,x;5,5\"/>",
    );
    assert_eq!(
        error(&xml),
        "image 'a.png', polygon 2 (line 6): point '12,x' is not two numbers"
    );
    let xml = one_image("<polygon label=\"x\" points=\"1,1;2;5,5\"/>");
    assert!(error(&xml).contains("point '2' is not two numbers"));
}

#[test]
fn rle_runs_that_do_not_cover_the_box_are_refused() {
    let xml = one_image(
        "<mask label=\"x\" rle=\"1, 2, 2\" left=\"0\" top=\"0\" width=\"2\" height=\"3\"/>",
    );
    assert_eq!(
        error(&xml),
        "image 'a.png', mask 1 (line 5): rle runs add up to 5 pixels but its 2×3 box has 6"
    );
    let xml = one_image(
        "<mask label=\"x\" rle=\"1, two, 3\" left=\"0\" top=\"0\" width=\"2\" height=\"3\"/>",
    );
    assert!(error(&xml).contains("rle run 'two' is not a whole number"));
    let xml = one_image("<mask label=\"x\" rle=\"6\" left=\"0\" top=\"0\" width=\"2\"/>");
    assert!(error(&xml).contains("no 'height' attribute"));
}

#[test]
fn a_truncated_file_is_an_error() {
    // Cut between tags: the reader reaches the end with <image> still open.
    let cut = FIXTURE.find("  <image id=\"2\"").unwrap();
    let err = error(&FIXTURE[..cut]);
    assert!(err.contains("ends before </annotations>"), "{err}");
    // Cut inside a shape's children: the shape is named.
    let cut = FIXTURE.find("<attribute name=\"grade\">").unwrap();
    let err = error(&FIXTURE[..cut]);
    assert!(
        err.starts_with("image 'a.png', polygon 1 (line 58): not well-formed XML"),
        "{err}"
    );
    // Cut inside a tag.
    let cut = FIXTURE.find("rx=\"3.00\"").unwrap();
    let err = error(&FIXTURE[..cut]);
    assert!(err.starts_with("line 44:"), "{err}");
}

#[test]
fn other_files_are_refused_clearly() {
    assert!(error("{\"images\": []}").contains("this is not XML"));
    assert!(error("").contains("not a CVAT for images 1.1 XML file"));
    assert!(error("<?xml version=\"1.0\"?>\n<dataset/>").contains("root element is <dataset>"));
    let video = "<annotations><version>1.1</version>\n<track id=\"0\" label=\"x\"><box frame=\"0\" xtl=\"1\" ytl=\"1\" xbr=\"2\" ybr=\"2\"/></track></annotations>";
    let err = error(video);
    assert!(
        err.starts_with("line 2:") && err.contains("export the task as \"CVAT for images 1.1\""),
        "{err}"
    );
}

#[test]
fn attribute_values_are_unescaped_and_an_empty_file_of_images_reads() {
    let xml = "<annotations><meta><labels><label><name>T &amp; B</name><color>#010203</color></label>\
               </labels></meta><image id=\"0\" name=\"a&amp;b.png\" width=\"4\" height=\"4\">\
               <box label=\"T &amp; B\" xtl=\"0\" ytl=\"0\" xbr=\"2\" ybr=\"2\"/></image></annotations>";
    let labels = read(xml).unwrap();
    assert_eq!(labels.images[0].name, "a&b.png");
    assert_eq!(
        labels.images[0].instances[0].class_name.as_deref(),
        Some("T & B")
    );
    assert_eq!(labels.class_colors.get("T & B"), Some(&[1, 2, 3]));
    assert_eq!(read("<annotations/>").unwrap(), ForeignLabels::default());
}
