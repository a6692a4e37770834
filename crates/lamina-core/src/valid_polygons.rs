//! A mask as polygons that are valid OGC Simple Features, the geometry model of GeoJSON readers
//! (shapely, JTS and so QuPath): every ring simple, holes inside their shell.
//!
//! [`mask_to_rings`] gives exact pixel-edge rings, but a ring may touch itself at one vertex (a bay of
//! background whose mouth is a single diagonal corner, or a hole of two diagonally touching background
//! pixels). Such a ring is "self-intersecting" to those readers. Splitting every ring at its repeated
//! vertices gives simple loops with the same pixels: loops turning like an outer ring are shells, the
//! others holes (a bay becomes a hole that touches its shell at one point, which the model allows).

use std::collections::HashMap;

use crate::mask::Mask;
use crate::polygon::{mask_to_rings, signed_area};

/// One polygon: its shell, then its holes. Rings are open (last vertex ≠ first), in image pixels.
pub type PolygonRings = Vec<Vec<[f64; 2]>>;

/// The mask's components as valid polygons with holes, exact to the pixel.
pub fn mask_to_valid_polygons(mask: &Mask) -> Vec<PolygonRings> {
    let mut shells: Vec<Vec<[f64; 2]>> = Vec::new();
    let mut holes: Vec<Vec<[f64; 2]>> = Vec::new();
    for ring in mask_to_rings(mask) {
        for simple in split_at_repeated_vertices(&ring.points) {
            // Outer rings run clockwise on screen: positive area with y down.
            if signed_area(&simple) > 0.0 {
                shells.push(simple);
            } else {
                holes.push(simple);
            }
        }
    }
    let mut polygons: Vec<PolygonRings> = shells.into_iter().map(|s| vec![s]).collect();
    for hole in holes {
        // The smallest shell around the hole: its vertices may lie on a shell (a touching bay), so the
        // test is on the bounding boxes, which the 4-connected components keep apart.
        let inside = polygons
            .iter_mut()
            .filter(|p| bbox_contains(&p[0], &hole))
            .min_by(|a, b| signed_area(&a[0]).total_cmp(&signed_area(&b[0])));
        if let Some(polygon) = inside {
            polygon.push(hole);
        }
    }
    polygons
}

/// Splits a closed ring into loops that visit each vertex once.
fn split_at_repeated_vertices(points: &[[f64; 2]]) -> Vec<Vec<[f64; 2]>> {
    let key = |p: [f64; 2]| (p[0].to_bits(), p[1].to_bits());
    let mut path: Vec<[f64; 2]> = Vec::with_capacity(points.len());
    let mut at: HashMap<(u64, u64), usize> = HashMap::new();
    let mut loops = Vec::new();
    for &p in points {
        if let Some(&start) = at.get(&key(p)) {
            // p closes the loop path[start..]: take it out, leaving p as the path's end.
            let closed: Vec<_> = path.drain(start + 1..).collect();
            for q in &closed {
                at.remove(&key(*q));
            }
            let mut ring = vec![p];
            ring.extend(closed);
            if ring.len() >= 3 {
                loops.push(ring);
            }
        } else {
            at.insert(key(p), path.len());
            path.push(p);
        }
    }
    if path.len() >= 3 {
        loops.push(path);
    }
    loops
}

fn bbox_contains(outer: &[[f64; 2]], inner: &[[f64; 2]]) -> bool {
    let bbox = |ring: &[[f64; 2]]| {
        ring.iter()
            .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |b, p| {
                [
                    b[0].min(p[0]),
                    b[1].min(p[1]),
                    b[2].max(p[0]),
                    b[3].max(p[1]),
                ]
            })
    };
    let (o, i) = (bbox(outer), bbox(inner));
    o[0] <= i[0] && o[1] <= i[1] && o[2] >= i[2] && o[3] >= i[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::polygon::rasterize_polygon;

    fn fill(polygons: &[PolygonRings], w: u32, h: u32) -> Mask {
        let mut out = Mask::new(w, h);
        for rings in polygons {
            for ring in rings {
                let f = rasterize_polygon(ring, w, h);
                for (o, v) in out.data.iter_mut().zip(&f.data) {
                    *o ^= *v;
                }
            }
        }
        out
    }

    fn vertices_repeat(ring: &[[f64; 2]]) -> bool {
        let mut seen = std::collections::HashSet::new();
        ring.iter()
            .any(|p| !seen.insert((p[0].to_bits(), p[1].to_bits())))
    }

    #[test]
    fn a_bay_closed_by_one_diagonal_corner_becomes_a_hole_touching_the_shell() {
        // The background pixel at (2, 2) is cut off from the outside except through its corner with
        // (3, 3): the outer ring passes vertex (3, 3) twice.
        let mask = Mask::from_rows(&["#####", "#####", "##.##", "###.#", "#####"]);
        let mask = {
            let mut m = mask;
            m.set(3, 3, false);
            m.set(3, 4, false);
            m.set(4, 3, false);
            m.set(4, 4, false);
            m
        };
        let polygons = mask_to_valid_polygons(&mask);
        assert_eq!(polygons.len(), 1);
        assert!(polygons[0].iter().all(|r| !vertices_repeat(r)));
        assert_eq!(fill(&polygons, 5, 5), mask);
    }

    #[test]
    fn a_hole_of_two_diagonal_pixels_becomes_two_holes() {
        let mask = Mask::from_rows(&["#####", "#.###", "##.##", "#####"]);
        let polygons = mask_to_valid_polygons(&mask);
        assert_eq!(polygons.len(), 1);
        assert_eq!(polygons[0].len(), 3, "{polygons:?}");
        assert_eq!(fill(&polygons, 5, 4), mask);
    }

    #[test]
    fn separate_components_are_separate_polygons() {
        let mask = Mask::from_rows(&["#..", ".#.", "..#"]);
        let polygons = mask_to_valid_polygons(&mask);
        assert_eq!(polygons.len(), 3);
        assert_eq!(fill(&polygons, 3, 3), mask);
    }
}
