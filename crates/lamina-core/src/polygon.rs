//! Polygons ↔ masks, in image pixels (pixel (x, y) covers [x, x+1) x [y, y+1)).
//!
//! Hand-written rather than taken from `imageproc` or `geo`: those pull in large dependency trees for a
//! wasm build, and we need only scanline filling, crack following and Douglas–Peucker.
//!
//! Connectivity rule (used everywhere here): foreground is **4-connected**, background 8-connected. Two
//! pixels that touch only at a corner belong to different components and get separate outer rings; the
//! boundary tracer turns towards the foreground at such a corner, so outer rings never merge across it.
//! A ring can still touch itself at a single vertex (a bay whose mouth is one diagonal corner, or a hole
//! made of two diagonally touching background pixels); even-odd filling is unaffected by that.

use crate::mask::Mask;

/// Fill a polygon (even-odd rule): a pixel is painted iff its centre is inside. The ring is closed
/// implicitly. A centre exactly on a left edge counts as inside and on a right edge as outside, so
/// polygons sharing an edge never share a pixel. Non-finite coordinates give an empty mask.
pub fn rasterize_polygon(points_image: &[[f64; 2]], width: u32, height: u32) -> Mask {
    let mut mask = Mask::new(width, height);
    let n = points_image.len();
    if n < 3 || points_image.iter().flatten().any(|v| !v.is_finite()) {
        return mask;
    }
    let mut crossings: Vec<f64> = Vec::new();
    for y in 0..height {
        let yc = f64::from(y) + 0.5;
        crossings.clear();
        for i in 0..n {
            let (a, b) = (points_image[i], points_image[(i + 1) % n]);
            // Half-open in y, so a vertex exactly on the scanline is counted once.
            if (a[1] <= yc) != (b[1] <= yc) {
                crossings.push(a[0] + (yc - a[1]) * (b[0] - a[0]) / (b[1] - a[1]));
            }
        }
        crossings.sort_by(f64::total_cmp);
        for span in crossings.chunks_exact(2) {
            // Centres x + 0.5 in [span[0], span[1]).
            let first = (span[0] - 0.5).ceil().max(0.0);
            let end = (span[1] - 0.5).ceil().min(f64::from(width));
            let mut x = first;
            while x < end {
                mask.set(x as u32, y, true);
                x += 1.0;
            }
        }
    }
    mask
}

/// A closed boundary ring (last vertex ≠ first), vertices on pixel corners (integer image coordinates).
/// Outer rings run clockwise on screen (positive [`signed_area`] with y down), holes counter-clockwise.
#[derive(Clone, Debug, PartialEq)]
pub struct Ring {
    pub points: Vec<[f64; 2]>,
    pub is_hole: bool,
}

/// Shoelace area in image pixels; positive for rings clockwise on screen (y down).
pub fn signed_area(points: &[[f64; 2]]) -> f64 {
    let n = points.len();
    (0..n)
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum::<f64>()
        / 2.0
}

/// The exact pixel-edge boundary of every 4-connected component: its outer ring, followed by its holes,
/// then the next component (components in raster order of their first pixel). Collinear vertices are
/// removed. Filling an outer ring and removing its holes' fills gives back exactly that component.
pub fn mask_to_rings(mask: &Mask) -> Vec<Ring> {
    let mut rings = Vec::new();
    for component in components(mask) {
        let mut loops = trace_loops(&component);
        for (i, points) in loops.iter_mut().enumerate() {
            for p in points.iter_mut() {
                p[0] += f64::from(component.x0);
                p[1] += f64::from(component.y0);
            }
            rings.push(Ring {
                points: std::mem::take(points),
                // The first loop starts at the top-left corner of the component's first pixel, which
                // is on its outer boundary.
                is_hole: i > 0,
            });
        }
    }
    rings
}

/// One 4-connected component, cropped to its bounding box.
struct Component {
    x0: u32,
    y0: u32,
    width: u32,
    height: u32,
    /// Row-major over the crop.
    inside: Vec<bool>,
}

impl Component {
    fn get(&self, x: i64, y: i64) -> bool {
        x >= 0
            && y >= 0
            && x < i64::from(self.width)
            && y < i64::from(self.height)
            && self.inside[(y * i64::from(self.width) + x) as usize]
    }
}

fn components(mask: &Mask) -> Vec<Component> {
    let (w, h) = (mask.width as usize, mask.height as usize);
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    for start in 0..w * h {
        if seen[start] || mask.data.get(start).is_none_or(|&v| v == 0) {
            continue;
        }
        seen[start] = true;
        let mut pixels = vec![start];
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then_some(i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < h).then_some(i + w),
            ];
            for j in neighbours.into_iter().flatten() {
                if !seen[j] && mask.data[j] != 0 {
                    seen[j] = true;
                    pixels.push(j);
                    stack.push(j);
                }
            }
        }
        out.push(crop(&pixels, w));
    }
    out
}

fn crop(pixels: &[usize], w: usize) -> Component {
    let xs = pixels.iter().map(|&i| i % w);
    let ys = pixels.iter().map(|&i| i / w);
    let (x0, x1) = (xs.clone().min().unwrap_or(0), xs.max().unwrap_or(0));
    let (y0, y1) = (ys.clone().min().unwrap_or(0), ys.max().unwrap_or(0));
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut inside = vec![false; cw * ch];
    for &i in pixels {
        inside[(i / w - y0) * cw + (i % w - x0)] = true;
    }
    Component {
        x0: x0 as u32,
        y0: y0 as u32,
        width: cw as u32,
        height: ch as u32,
        inside,
    }
}

/// Directions on the vertex grid: east, south, west, north (y down). Turning right is +1.
const STEPS: [(i64, i64); 4] = [(1, 0), (0, 1), (-1, 0), (0, -1)];

/// Follow the cracks between the component and everything else, foreground on the right, and return
/// each closed loop's corner vertices (crop coordinates).
fn trace_loops(c: &Component) -> Vec<Vec<[f64; 2]>> {
    let (vw, vh) = (i64::from(c.width) + 1, i64::from(c.height) + 1);
    let vertex = |x: i64, y: i64| (y * vw + x) as usize;
    // Bit d of out_edges[v]: a boundary crack leaves vertex v in direction d.
    let mut out_edges = vec![0u8; (vw * vh) as usize];
    let mut edge_count = 0usize;
    for y in 0..i64::from(c.height) {
        for x in 0..i64::from(c.width) {
            if !c.get(x, y) {
                continue;
            }
            for (bg, v, d) in [
                (!c.get(x, y - 1), vertex(x, y), 0),
                (!c.get(x + 1, y), vertex(x + 1, y), 1),
                (!c.get(x, y + 1), vertex(x + 1, y + 1), 2),
                (!c.get(x - 1, y), vertex(x, y + 1), 3),
            ] {
                if bg {
                    out_edges[v] |= 1 << d;
                    edge_count += 1;
                }
            }
        }
    }
    let all_edges = out_edges.clone();
    // At a vertex where two cracks leave (two pixels touching at a corner), turning right keeps hugging
    // the same foreground pixel, which is what keeps diagonal neighbours apart (4-connectivity).
    let next_direction = |v: usize, d: usize| {
        [(d + 1) % 4, d, (d + 3) % 4]
            .into_iter()
            .find(|&nd| all_edges[v] & (1 << nd) != 0)
    };
    let mut loops = Vec::new();
    for start in 0..out_edges.len() {
        while out_edges[start] != 0 {
            let start_d = out_edges[start].trailing_zeros() as usize;
            let (mut v, mut d) = (start, start_d);
            let mut corners = Vec::new();
            // Each crack is used once, so a loop is at most edge_count long; the cap only guards a bug.
            for _ in 0..edge_count {
                out_edges[v] &= !(1 << d);
                let (x, y) = (v as i64 % vw + STEPS[d].0, v as i64 / vw + STEPS[d].1);
                v = vertex(x, y);
                let Some(nd) = next_direction(v, d) else {
                    break;
                };
                if nd != d {
                    corners.push([x as f64, y as f64]);
                }
                if v == start && nd == start_d {
                    break;
                }
                d = nd;
            }
            loops.push(corners);
        }
    }
    loops
}

/// Largest change in area (as a fraction of the ring's area) a simplification may cause.
pub const MAX_AREA_CHANGE: f64 = 0.1;
/// A ring simplified below this many vertices has collapsed.
pub const MIN_VERTICES: usize = 4;

/// Douglas–Peucker on a closed ring, `tolerance` in image pixels. Small objects must not collapse: if
/// the result has fewer than [`MIN_VERTICES`] vertices or its area differs by more than
/// [`MAX_AREA_CHANGE`], the tolerance is halved (a few times), and failing that the ring is returned as
/// is.
pub fn simplify_ring(points: &[[f64; 2]], tolerance: f64) -> Vec<[f64; 2]> {
    if points.len() <= MIN_VERTICES || tolerance.is_nan() || tolerance <= 0.0 {
        return points.to_vec();
    }
    let area = signed_area(points);
    let mut tol = tolerance;
    for _ in 0..6 {
        let simplified = douglas_peucker_closed(points, tol);
        let change = (signed_area(&simplified) - area).abs();
        if simplified.len() >= MIN_VERTICES && change <= MAX_AREA_CHANGE * area.abs() {
            return simplified;
        }
        tol /= 2.0;
    }
    points.to_vec()
}

/// Split the ring at vertex 0 and the vertex farthest from it, and simplify both chains.
fn douglas_peucker_closed(points: &[[f64; 2]], tolerance: f64) -> Vec<[f64; 2]> {
    let n = points.len();
    let far = (1..n)
        .max_by(|&i, &j| dist_sq(points[0], points[i]).total_cmp(&dist_sq(points[0], points[j])))
        .unwrap_or(0);
    let mut keep = vec![false; n];
    keep[0] = true;
    keep[far] = true;
    // Chains as index ranges on the ring; the second wraps back to vertex 0 (index n).
    let mut stack = vec![(0, far), (far, n)];
    while let Some((a, b)) = stack.pop() {
        let (pa, pb) = (points[a % n], points[b % n]);
        let farthest = (a + 1..b)
            .map(|i| (i, segment_distance_sq(points[i], pa, pb)))
            .max_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((i, d2)) = farthest {
            if d2 > tolerance * tolerance {
                keep[i] = true;
                stack.push((a, i));
                stack.push((i, b));
            }
        }
    }
    points
        .iter()
        .zip(keep)
        .filter_map(|(&p, k)| k.then_some(p))
        .collect()
}

fn dist_sq(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

fn segment_distance_sq(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (abx, aby) = (b[0] - a[0], b[1] - a[1]);
    let len2 = abx * abx + aby * aby;
    if len2 == 0.0 {
        return dist_sq(p, a);
    }
    let t = (((p[0] - a[0]) * abx + (p[1] - a[1]) * aby) / len2).clamp(0.0, 1.0);
    dist_sq(p, [a[0] + t * abx, a[1] + t * aby])
}

/// Outer rings of every component, simplified with `tolerance` (image pixels), for COCO's polygon form.
/// COCO polygons cannot hold holes (pycocotools unions an annotation's polygons), so holes are dropped:
/// a hole's pixels are filled in this form. Use RLE when holes matter.
pub fn mask_to_polygons(mask: &Mask, tolerance: f64) -> Vec<Vec<[f64; 2]>> {
    mask_to_rings(mask)
        .into_iter()
        .filter(|r| !r.is_hole)
        .map(|r| simplify_ring(&r.points, tolerance))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Rebuild a mask from rings: each outer ring's fill minus its holes' fills.
    fn rings_to_mask(rings: &[Ring], w: u32, h: u32) -> (Mask, u64) {
        let mut out = Mask::new(w, h);
        let mut area_sum = 0;
        let mut piece = Mask::new(w, h);
        for (i, ring) in rings.iter().enumerate() {
            let fill = rasterize_polygon(&ring.points, w, h);
            if ring.is_hole {
                piece.subtract(&fill).unwrap();
            } else {
                piece = fill;
            }
            if rings.get(i + 1).is_none_or(|r| !r.is_hole) {
                area_sum += piece.area();
                out.union_with(&piece).unwrap();
            }
        }
        (out, area_sum)
    }

    #[test]
    fn rasterizes_a_triangle_by_pixel_centres() {
        let m = rasterize_polygon(&[[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], 5, 5);
        let rows: Vec<String> = (0..5)
            .map(|y| {
                (0..5)
                    .map(|x| if m.get(x, y) { '#' } else { '.' })
                    .collect()
            })
            .collect();
        assert_eq!(rows, ["###..", "##...", "#....", ".....", "....."]);
    }

    #[test]
    fn shared_edge_is_not_painted_twice() {
        let a = rasterize_polygon(&[[0.5, 0.0], [2.5, 0.0], [2.5, 3.0], [0.5, 3.0]], 4, 3);
        let b = rasterize_polygon(&[[2.5, 0.0], [4.0, 0.0], [4.0, 3.0], [2.5, 3.0]], 4, 3);
        assert_eq!(a.iou(&b), Ok(0.0));
        assert_eq!(a.area() + b.area(), 12);
    }

    #[test]
    fn square_gives_four_corners_clockwise() {
        let m = Mask::from_rows(&["....", ".##.", ".##.", "...."]);
        let rings = mask_to_rings(&m);
        assert_eq!(rings.len(), 1);
        assert!(!rings[0].is_hole);
        assert_eq!(
            rings[0].points.len(),
            4,
            "collinear vertices removed: {:?}",
            rings[0].points
        );
        assert_eq!(signed_area(&rings[0].points), 4.0);
    }

    #[test]
    fn ring_with_a_hole() {
        let m = Mask::from_rows(&["###", "#.#", "###"]);
        let rings = mask_to_rings(&m);
        assert_eq!(rings.len(), 2);
        assert_eq!((rings[0].is_hole, rings[1].is_hole), (false, true));
        assert_eq!(signed_area(&rings[1].points), -1.0);
        assert_eq!(rings_to_mask(&rings, 3, 3).0, m);
        // COCO polygons drop the hole.
        let polys = mask_to_polygons(&m, 0.5);
        assert_eq!(polys.len(), 1);
        assert_eq!(rasterize_polygon(&polys[0], 3, 3).area(), 9);
    }

    #[test]
    fn diagonal_neighbours_are_separate_components() {
        let m = Mask::from_rows(&["#..", ".#.", "..#"]);
        let rings = mask_to_rings(&m);
        assert_eq!(rings.iter().filter(|r| !r.is_hole).count(), 3);
        assert!(rings.iter().all(|r| r.points.len() == 4));
        // Two background pixels touching diagonally inside a component make one hole.
        let m = Mask::from_rows(&["####", "#.##", "##.#", "####"]);
        let rings = mask_to_rings(&m);
        assert_eq!(rings.iter().filter(|r| r.is_hole).count(), 1);
        assert_eq!(rings_to_mask(&rings, 4, 4).0, m);
    }

    #[test]
    fn island_inside_a_hole_is_its_own_component() {
        let m = Mask::from_rows(&["#####", "#...#", "#.#.#", "#...#", "#####"]);
        let rings = mask_to_rings(&m);
        let kinds: Vec<bool> = rings.iter().map(|r| r.is_hole).collect();
        assert_eq!(kinds, [false, true, false]);
        assert_eq!(rings_to_mask(&rings, 5, 5).0, m);
    }

    #[test]
    fn simplify_keeps_small_objects_and_removes_staircase_noise() {
        let square = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
        assert_eq!(simplify_ring(&square, 10.0), square);
        // A 1-pixel notch on a long edge goes away at tolerance 1.5 without changing the area much.
        let notched = [
            [0.0, 0.0],
            [4.0, 0.0],
            [4.0, 1.0],
            [5.0, 1.0],
            [5.0, 0.0],
            [10.0, 0.0],
            [10.0, 10.0],
            [0.0, 10.0],
        ];
        let s = simplify_ring(&notched, 1.5);
        assert_eq!(s.len(), 4, "{s:?}");
        // A thin sliver would lose all its area at a large tolerance, so it is kept.
        let disc = mask_to_rings(&{
            let mut m = Mask::new(12, 12);
            m.paint_disc(6.0, 6.0, 2.5, true);
            m
        });
        let s = simplify_ring(&disc[0].points, 100.0);
        assert!(s.len() >= MIN_VERTICES);
        let change = (signed_area(&s) - signed_area(&disc[0].points)).abs();
        assert!(
            change <= MAX_AREA_CHANGE * signed_area(&disc[0].points),
            "{s:?}"
        );
    }

    fn arb_mask() -> impl Strategy<Value = Mask> {
        (1u32..14, 1u32..14, 0.2..0.8f64).prop_flat_map(|(w, h, density)| {
            proptest::collection::vec(proptest::bool::weighted(density), (w * h) as usize).prop_map(
                move |bits| Mask {
                    width: w,
                    height: h,
                    data: bits.into_iter().map(u8::from).collect(),
                },
            )
        })
    }

    proptest! {
        #[test]
        fn rings_rebuild_the_mask_exactly(mask in arb_mask()) {
            let rings = mask_to_rings(&mask);
            let (rebuilt, area_sum) = rings_to_mask(&rings, mask.width, mask.height);
            prop_assert_eq!(&rebuilt, &mask);
            prop_assert_eq!(area_sum, mask.area(), "components overlap");
            for r in &rings {
                prop_assert!(r.points.len() >= 4);
                prop_assert_eq!(signed_area(&r.points) < 0.0, r.is_hole);
                let n = r.points.len();
                for i in 0..n {
                    let (a, b, c) = (r.points[i], r.points[(i + 1) % n], r.points[(i + 2) % n]);
                    let cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
                    prop_assert!(cross != 0.0, "collinear vertex at {:?}", b);
                }
            }
        }

        #[test]
        fn simplified_polygons_stay_close(mask in arb_mask(), tol in 0.0..3.0f64) {
            for ring in mask_to_rings(&mask).iter().filter(|r| !r.is_hole) {
                let s = simplify_ring(&ring.points, tol);
                prop_assert!(s.len() >= MIN_VERTICES);
                let (a, b) = (signed_area(&ring.points), signed_area(&s));
                prop_assert!((a - b).abs() <= MAX_AREA_CHANGE * a + 1e-9);
            }
        }

        #[test]
        fn rasterize_never_panics(points in proptest::collection::vec(proptest::array::uniform2(-1e3..1e3f64), 0..8)) {
            let m = rasterize_polygon(&points, 16, 16);
            prop_assert_eq!(m.data.len(), 256);
        }
    }
}
