//! The geometry of one CVAT shape element, from its attributes.

use std::collections::BTreeMap;

use crate::foreign::Shape;

/// Masks and ellipses become a bitmap over their box; a box larger than this (16384² pixels) is refused
/// rather than allocated, as no image of a CVAT images task is that large and a hostile file could ask
/// for gigabytes.
const MAX_BOX_PIXELS: u64 = 1 << 28;

/// What one shape element gives.
pub(super) enum Read {
    Area(Shape),
    /// Left out, with the reason the user reads.
    Skip(String),
}

/// A shape element of kind `kind` (its tag name) as an area, or why it is left out.
pub(super) fn read_shape(kind: &str, attrs: &BTreeMap<String, String>) -> Result<Read, String> {
    let skip = |reason: &str| Ok(Read::Skip(reason.to_owned()));
    match kind {
        "polygon" => polygon(attrs),
        "box" => rotated_box(attrs).map(Read::Area),
        "ellipse" => ellipse(attrs),
        "mask" => mask(attrs).map(Read::Area),
        "polyline" => skip("a polyline is a line, not an area"),
        "points" => skip("points are not an area"),
        "tag" => skip("a tag labels the whole image, not an area"),
        "skeleton" => skip("a skeleton is keypoints, not an area"),
        "cuboid" => skip("a cuboid is a 3D box, not an outline"),
        other => Ok(Read::Skip(format!(
            "<{other}> is not a shape this reader knows"
        ))),
    }
}

fn required<'m>(attrs: &'m BTreeMap<String, String>, key: &str) -> Result<&'m str, String> {
    attrs
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| format!("no '{key}' attribute"))
}

fn number(attrs: &BTreeMap<String, String>, key: &str) -> Result<f64, String> {
    let value = required(attrs, key)?;
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{key}='{value}' is not a number"))
}

/// A whole number (CVAT writes mask boxes as integers; "12.0" is accepted as 12).
fn whole(attrs: &BTreeMap<String, String>, key: &str) -> Result<i64, String> {
    let v = number(attrs, key)?;
    if v.fract() != 0.0 || v.abs() > 1e15 {
        return Err(format!("{key}='{v}' is not a whole number of pixels"));
    }
    Ok(v as i64)
}

/// Degrees clockwise on screen (y down), about the shape's centre; 0 when absent.
fn rotation(attrs: &BTreeMap<String, String>) -> Result<f64, String> {
    if attrs.contains_key("rotation") {
        number(attrs, "rotation").map(f64::to_radians)
    } else {
        Ok(0.0)
    }
}

/// `points="x1,y1;x2,y2;…"`, one ring.
fn polygon(attrs: &BTreeMap<String, String>) -> Result<Read, String> {
    let mut ring = Vec::new();
    // A trailing ';' leaves an empty piece: not a point, not an error.
    for point in required(attrs, "points")?
        .split(';')
        .filter(|p| !p.trim().is_empty())
    {
        let xy: Vec<Option<f64>> = point
            .split(',')
            .map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect();
        match xy.as_slice() {
            [Some(x), Some(y)] => ring.push([*x, *y]),
            _ => return Err(format!("point '{point}' is not two numbers")),
        }
    }
    if ring.len() < 3 {
        return Ok(Read::Skip(format!(
            "a polygon of {} points has no area",
            ring.len()
        )));
    }
    Ok(Read::Area(Shape::Polygons(vec![vec![ring]])))
}

/// `xtl ytl xbr ybr`, turned by `rotation` about its centre as CVAT draws it.
fn rotated_box(attrs: &BTreeMap<String, String>) -> Result<Shape, String> {
    let (x0, y0) = (number(attrs, "xtl")?, number(attrs, "ytl")?);
    let (x1, y1) = (number(attrs, "xbr")?, number(attrs, "ybr")?);
    let angle = rotation(attrs)?;
    if angle == 0.0 {
        return Ok(Shape::rectangle(x0, y0, x1, y1));
    }
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let (sin, cos) = angle.sin_cos();
    let corners = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
    let ring = corners
        .iter()
        .map(|[x, y]| {
            let (dx, dy) = (x - cx, y - cy);
            [cx + dx * cos - dy * sin, cy + dx * sin + dy * cos]
        })
        .collect();
    Ok(Shape::Polygons(vec![vec![ring]]))
}

/// `cx cy rx ry rotation`: the pixels whose centre is inside, exactly (no polygon approximation).
fn ellipse(attrs: &BTreeMap<String, String>) -> Result<Read, String> {
    let (cx, cy) = (number(attrs, "cx")?, number(attrs, "cy")?);
    let (rx, ry) = (number(attrs, "rx")?, number(attrs, "ry")?);
    let (sin, cos) = rotation(attrs)?.sin_cos();
    if rx <= 0.0 || ry <= 0.0 {
        return Ok(Read::Skip(
            "an ellipse with a zero radius has no area".to_owned(),
        ));
    }
    // Half the extent of the turned ellipse along x and y.
    let (half_w, half_h) = ((rx * cos).hypot(ry * sin), (rx * sin).hypot(ry * cos));
    let (left, top) = ((cx - half_w).floor(), (cy - half_h).floor());
    let (width, height) = ((cx + half_w).ceil() - left, (cy + half_h).ceil() - top);
    if width * height > MAX_BOX_PIXELS as f64 {
        return Err(format!(
            "a {width}×{height} ellipse is larger than any image this reads"
        ));
    }
    let (width, height) = (width as u32, height as u32);
    let mut inside = Vec::with_capacity(width as usize * height as usize);
    for row in 0..height {
        for col in 0..width {
            let dx = left + f64::from(col) + 0.5 - cx;
            let dy = top + f64::from(row) + 0.5 - cy;
            // Into the ellipse's own axes: undo the clockwise turn.
            let (u, v) = (dx * cos + dy * sin, -dx * sin + dy * cos);
            inside.push((u / rx).powi(2) + (v / ry).powi(2) <= 1.0);
        }
    }
    Ok(Read::Area(Shape::Patch {
        left: left as i64,
        top: top as i64,
        width,
        height,
        inside,
    }))
}

/// `rle="r1, r2, …" left top width height`: run lengths over the box, row-major, alternating from a
/// background run (a box whose first pixel is foreground starts with 0).
fn mask(attrs: &BTreeMap<String, String>) -> Result<Shape, String> {
    let (left, top) = (whole(attrs, "left")?, whole(attrs, "top")?);
    let side = |key: &str| -> Result<u32, String> {
        u32::try_from(whole(attrs, key)?).map_err(|_| format!("{key} is not a size in pixels"))
    };
    let (width, height) = (side("width")?, side("height")?);
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_BOX_PIXELS {
        return Err(format!(
            "a {width}×{height} mask is larger than any image this reads"
        ));
    }
    let mut runs = Vec::new();
    for run in required(attrs, "rle")?.split(',') {
        let run = run.trim();
        runs.push(
            run.parse::<u32>()
                .map_err(|_| format!("rle run '{run}' is not a whole number"))?,
        );
    }
    let sum: u64 = runs.iter().map(|&r| u64::from(r)).sum();
    if sum != pixels {
        return Err(format!(
            "rle runs add up to {sum} pixels but its {width}×{height} box has {pixels}"
        ));
    }
    let mut inside = Vec::with_capacity(pixels as usize);
    for (i, &run) in runs.iter().enumerate() {
        inside.extend(std::iter::repeat_n(i % 2 == 1, run as usize));
    }
    Ok(Shape::Patch {
        left,
        top,
        width,
        height,
        inside,
    })
}
