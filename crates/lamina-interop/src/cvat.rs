//! CVAT for images 1.1 XML (the format of CVAT's "Export task dataset" → "CVAT for images 1.1").
//!
//! `<annotations>` holds `<meta>` (the labels and their colours) and one `<image id name width height>`
//! per image, whose children are its shapes. Areas become instances: polygons, boxes (rotated or not),
//! ellipses and masks. Lines, points, tags, skeletons and cuboids are not nucleus outlines: they are
//! listed in [`ForeignLabels::skipped`] with why. The file is read as a stream of events (quick-xml), so
//! an export of many thousand shapes never becomes a tree in memory.
//!
//! Shapes are named in messages by kind and position within their image ("polygon 3", counted from 1
//! per kind) and by the line of their tag, so a user can find them in the file.

mod shapes;

use std::collections::BTreeMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::foreign::{ForeignImage, ForeignInstance, ForeignLabels};
use crate::InteropError;
use shapes::{read_shape, Read};

/// Reads a CVAT for images 1.1 XML file. Fails on XML that is not well formed or cut short, on a file
/// that is not CVAT for images (another root, or a video export's `<track>`s) and on a shape whose
/// geometry cannot be read, naming the image, the shape and the line.
pub fn read(xml: &str) -> Result<ForeignLabels, InteropError> {
    let mut state = CvatReader {
        xml,
        reader: Reader::from_str(xml),
        lines: LineCounter::default(),
        out: ForeignLabels::default(),
        open: Vec::new(),
        label: None,
        image: None,
        seen_root: false,
    };
    state.reader.config_mut().trim_text(true);
    state.run()?;
    Ok(state.out)
}

struct CvatReader<'a> {
    xml: &'a str,
    reader: Reader<&'a [u8]>,
    lines: LineCounter,
    out: ForeignLabels,
    /// Names of the elements open around the reader, the root first.
    open: Vec<String>,
    /// A `<label>` of the meta's `<labels>` being read: its name and colour arrive as child text.
    label: Option<LabelInMeta>,
    image: Option<OpenImage>,
    seen_root: bool,
}

#[derive(Default)]
struct LabelInMeta {
    name: String,
    color: String,
}

struct OpenImage {
    image: ForeignImage,
    /// Shapes seen so far in this image, per kind, to number them as CVAT's UI lists them.
    seen: BTreeMap<String, usize>,
}

impl CvatReader<'_> {
    fn run(&mut self) -> Result<(), InteropError> {
        loop {
            let event = self.reader.read_event().map_err(|e| self.xml_error(e))?;
            match event {
                Event::Start(e) => self.element(&e, true)?,
                Event::Empty(e) => self.element(&e, false)?,
                Event::End(_) => self.close_element(),
                Event::Text(t) => {
                    let text = t.unescape().map_err(|e| self.xml_error(e))?;
                    self.text(&text)?;
                }
                Event::CData(t) => self.text(&String::from_utf8_lossy(&t))?,
                Event::Eof => break,
                // Declaration, comments, processing instructions, doctype: nothing to read.
                _ => {}
            }
        }
        if let Some(inside) = self.open.last() {
            let line = self.lines.line_at(self.xml, self.xml.len());
            return Err(InteropError::new(
                format!("line {line}"),
                format!(
                    "the file ends before </{inside}>: it is cut short (an interrupted download?)"
                ),
            ));
        }
        if !self.seen_root {
            return Err(InteropError::new(
                "file",
                "no <annotations> element: not a CVAT for images 1.1 XML file",
            ));
        }
        Ok(())
    }

    /// A start tag (`has_children`) or an empty element.
    fn element(&mut self, e: &BytesStart, has_children: bool) -> Result<(), InteropError> {
        let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        let line = self.tag_line();
        match self.open.last().map(String::as_str) {
            None if name == "annotations" => self.seen_root = true,
            None => {
                return Err(InteropError::new(
                    format!("line {line}"),
                    format!("the root element is <{name}>, not <annotations>: not a CVAT for images 1.1 XML file"),
                ))
            }
            Some("annotations") if name == "track" => {
                return Err(InteropError::new(
                    format!("line {line}"),
                    "this is a \"CVAT for video 1.1\" file (it has <track> elements); export the \
                     task as \"CVAT for images 1.1\" instead",
                ))
            }
            Some("annotations") if name == "image" => {
                self.open_image(e, line)?;
                if !has_children {
                    self.close_image();
                }
            }
            Some("image") if self.image.is_some() => {
                let place = self.shape(e, &name, line)?;
                // A shape's children are its attribute values (or a skeleton's points): not read.
                if has_children {
                    self.reader.read_to_end(e.name()).map_err(|err| {
                        InteropError::new(place, format!("not well-formed XML inside it: {err}"))
                    })?;
                }
                return Ok(());
            }
            Some("labels") if name == "label" => self.label = Some(LabelInMeta::default()),
            Some(_) => {}
        }
        if has_children {
            self.open.push(name);
        }
        Ok(())
    }

    fn close_element(&mut self) {
        let closed = self.open.pop();
        let parent = self.open.last().map(String::as_str);
        match (closed.as_deref(), parent) {
            (Some("image"), Some("annotations")) => self.close_image(),
            (Some("label"), Some("labels")) => {
                if let Some(label) = self.label.take() {
                    self.add_label_color(label);
                }
            }
            _ => {}
        }
    }

    fn text(&mut self, text: &str) -> Result<(), InteropError> {
        if self.open.is_empty()
            && !self.seen_root
            && !text.trim_matches('\u{feff}').trim().is_empty()
        {
            let line = self
                .lines
                .line_at(self.xml, position(self.reader.buffer_position()));
            return Err(InteropError::new(
                format!("line {line}"),
                "text before the first element: this is not XML (a CVAT for images 1.1 file starts with <annotations>)",
            ));
        }
        let depth = self.open.len();
        let in_label = depth >= 2 && self.open[depth - 2] == "label";
        if let (Some(label), true) = (self.label.as_mut(), in_label) {
            match self.open[depth - 1].as_str() {
                "name" => label.name.push_str(text),
                "color" => label.color.push_str(text),
                _ => {}
            }
        }
        Ok(())
    }

    fn add_label_color(&mut self, label: LabelInMeta) {
        let (name, color) = (label.name.trim(), label.color.trim());
        if name.is_empty() || color.is_empty() {
            return; // A label without a colour gets one when the import adds it.
        }
        match parse_color(color) {
            Some(rgb) => {
                self.out.class_colors.insert(name.to_owned(), rgb);
            }
            None => self.out.skipped.push(format!(
                "label '{name}': colour '{color}' is not #rrggbb (a colour is chosen for it)"
            )),
        }
    }

    fn open_image(&mut self, e: &BytesStart, line: usize) -> Result<(), InteropError> {
        let place = format!("image (line {line})");
        let attrs = attributes(e).map_err(|m| InteropError::new(&place, m))?;
        let name = attrs
            .get("name")
            .ok_or_else(|| InteropError::new(&place, "no 'name' attribute"))?;
        let place = format!("image '{name}' (line {line})");
        let size = |key: &str| -> Result<Option<u32>, InteropError> {
            attrs
                .get(key)
                .map(|v| {
                    v.trim().parse::<u32>().map_err(|_| {
                        InteropError::new(
                            &place,
                            format!("{key}='{v}' is not a whole number of pixels"),
                        )
                    })
                })
                .transpose()
        };
        let image = ForeignImage {
            width: size("width")?,
            height: size("height")?,
            ..ForeignImage::named(name.as_str())
        };
        self.image = Some(OpenImage {
            image,
            seen: BTreeMap::new(),
        });
        Ok(())
    }

    fn close_image(&mut self) {
        if let Some(open) = self.image.take() {
            self.out.images.push(open.image);
        }
    }

    /// Reads one shape of the open image; returns how messages name it.
    fn shape(&mut self, e: &BytesStart, kind: &str, line: usize) -> Result<String, InteropError> {
        let Some(open) = self.image.as_mut() else {
            return Ok(format!("{kind} (line {line})"));
        };
        let n = open.seen.entry(kind.to_owned()).or_default();
        *n += 1;
        let at = format!("{kind} {n} (line {line})");
        let place = format!("image '{}', {at}", open.image.name);
        let attrs = attributes(e).map_err(|m| InteropError::new(&place, m))?;
        let read = read_shape(kind, &attrs).map_err(|m| InteropError::new(&place, m))?;
        match read {
            Read::Area(shape) => open.image.instances.push(ForeignInstance {
                class_name: attrs.get("label").cloned(),
                shape,
                at,
                score: None,
            }),
            Read::Skip(reason) => self.out.skipped.push(format!("{place}: {reason}")),
        }
        Ok(place)
    }

    /// The line of the tag just read: the `<` before the reader's position.
    fn tag_line(&mut self) -> usize {
        let end = position(self.reader.buffer_position()).min(self.xml.len());
        let start = self.xml.as_bytes()[..end]
            .iter()
            .rposition(|&b| b == b'<')
            .unwrap_or(end);
        self.lines.line_at(self.xml, start)
    }

    fn xml_error(&mut self, e: impl std::fmt::Display) -> InteropError {
        let line = self
            .lines
            .line_at(self.xml, position(self.reader.error_position()));
        InteropError::new(format!("line {line}"), format!("not well-formed XML: {e}"))
    }
}

fn position(byte: u64) -> usize {
    usize::try_from(byte).unwrap_or(usize::MAX)
}

/// Line numbers from byte offsets, counting newlines only once for a reader that moves forwards.
#[derive(Default)]
struct LineCounter {
    counted_to: usize,
    newlines: usize,
}

impl LineCounter {
    fn line_at(&mut self, text: &str, byte: usize) -> usize {
        let byte = byte.min(text.len());
        if byte < self.counted_to {
            *self = LineCounter::default();
        }
        let bytes = &text.as_bytes()[self.counted_to..byte];
        self.newlines += bytes.iter().filter(|&&b| b == b'\n').count();
        self.counted_to = byte;
        self.newlines + 1
    }
}

/// An element's attributes, unescaped, by name.
fn attributes(e: &BytesStart) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| format!("malformed attribute: {err}"))?;
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        let value = attr
            .unescape_value()
            .map_err(|err| format!("attribute '{key}': {err}"))?;
        out.insert(key, value.into_owned());
    }
    Ok(out)
}
/// `#rrggbb` (the `#` may be missing).
fn parse_color(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#').unwrap_or(text);
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}
