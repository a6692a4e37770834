//! The labeling view's geometry, kept out of the UI so it is tested natively: how image pixels map to
//! the screen, fitting an image into the viewport, and zooming about the cursor.
//!
//! *Screen* means CSS pixels relative to the viewport's top-left corner.

/// screen = image × scale + (tx, ty).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScreenFromImage {
    pub scale: f64,
    pub tx: f64,
    pub ty: f64,
}

/// The smallest and largest zoom the view allows (screen pixels per image pixel).
pub const MIN_SCALE: f64 = 0.05;
pub const MAX_SCALE: f64 = 64.0;

impl ScreenFromImage {
    pub const IDENTITY: ScreenFromImage = ScreenFromImage {
        scale: 1.0,
        tx: 0.0,
        ty: 0.0,
    };

    pub fn image_from_screen(&self, x_screen: f64, y_screen: f64) -> [f64; 2] {
        [
            (x_screen - self.tx) / self.scale,
            (y_screen - self.ty) / self.scale,
        ]
    }

    pub fn screen_from_image(&self, x_image: f64, y_image: f64) -> [f64; 2] {
        [
            x_image * self.scale + self.tx,
            y_image * self.scale + self.ty,
        ]
    }

    /// The whole image centred in the viewport, with a 5 % margin.
    pub fn fit(viewport_w: f64, viewport_h: f64, image_w: f64, image_h: f64) -> ScreenFromImage {
        let scale = (0.95 * (viewport_w / image_w).min(viewport_h / image_h)).max(0.01);
        ScreenFromImage {
            scale,
            tx: (viewport_w - image_w * scale) / 2.0,
            ty: (viewport_h - image_h * scale) / 2.0,
        }
    }

    /// Zoomed by a wheel movement of `wheel_delta_y` (positive: away from the user, zoom out) about the
    /// screen point under the cursor, which keeps showing the same image point.
    pub fn zoomed_at(&self, x_screen: f64, y_screen: f64, wheel_delta_y: f64) -> ScreenFromImage {
        let [x_image, y_image] = self.image_from_screen(x_screen, y_screen);
        let scale = (self.scale * (-wheel_delta_y * 0.0015).exp()).clamp(MIN_SCALE, MAX_SCALE);
        ScreenFromImage {
            scale,
            tx: x_screen - x_image * scale,
            ty: y_screen - y_image * scale,
        }
    }
}

/// A file name made from a project name: ASCII letters, digits and '-', the rest '_', no '_' at the ends.
pub fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_owned()
}

/// Whether a file in a picked or dropped folder is an image Lamina imports (by extension; the header
/// decides later whether it really is one).
pub fn is_image_file_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".tif", ".tiff"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_centres_the_image_with_a_margin() {
        let v = ScreenFromImage::fit(1000.0, 500.0, 256.0, 256.0);
        assert!((v.scale - 0.95 * 500.0 / 256.0).abs() < 1e-12);
        let [x0, y0] = v.screen_from_image(0.0, 0.0);
        let [x1, y1] = v.screen_from_image(256.0, 256.0);
        assert!(((x0 + x1) / 2.0 - 500.0).abs() < 1e-9 && ((y0 + y1) / 2.0 - 250.0).abs() < 1e-9);
        assert!(
            (y1 - y0 - 475.0).abs() < 1e-9,
            "5 % margin on the tight side"
        );
    }

    #[test]
    fn zoom_keeps_the_point_under_the_cursor() {
        let v = ScreenFromImage {
            scale: 2.0,
            tx: 30.0,
            ty: -10.0,
        };
        let before = v.image_from_screen(123.0, 77.0);
        for delta in [-240.0, -1.0, 1.0, 600.0] {
            let z = v.zoomed_at(123.0, 77.0, delta);
            let after = z.image_from_screen(123.0, 77.0);
            assert!((before[0] - after[0]).abs() < 1e-9 && (before[1] - after[1]).abs() < 1e-9);
            assert_eq!(z.scale > v.scale, delta < 0.0, "wheel up zooms in");
        }
    }

    #[test]
    fn zoom_stays_within_its_limits() {
        let v = ScreenFromImage::IDENTITY;
        assert_eq!(v.zoomed_at(0.0, 0.0, 1e6).scale, MIN_SCALE);
        assert_eq!(v.zoomed_at(0.0, 0.0, -1e6).scale, MAX_SCALE);
    }

    #[test]
    fn screen_and_image_maps_are_inverse() {
        let v = ScreenFromImage {
            scale: 0.37,
            tx: 5.5,
            ty: 900.0,
        };
        let [x, y] = v.screen_from_image(17.25, 3.5);
        let [a, b] = v.image_from_screen(x, y);
        assert!((a - 17.25).abs() < 1e-9 && (b - 3.5).abs() < 1e-9);
    }

    #[test]
    fn file_stems_are_safe_names() {
        assert_eq!(
            file_stem("Demo: NuInsSeg nuclei (CC BY 4.0)"),
            "Demo__NuInsSeg_nuclei__CC_BY_4_0"
        );
        assert_eq!(file_stem("../../etc/passwd"), "etc_passwd");
        assert_eq!(file_stem("liver-1"), "liver-1");
    }

    #[test]
    fn image_names_by_extension_in_any_case() {
        assert!(is_image_file_name("a/B.TIF") && is_image_file_name("x.jpeg"));
        assert!(!is_image_file_name("notes.txt") && !is_image_file_name("png"));
    }
}
