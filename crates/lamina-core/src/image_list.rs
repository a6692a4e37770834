//! Image manifests: a CSV or JSON list of image URLs with metadata columns (e.g. `organ`).
//!
//! A manifest with some bad rows still imports its good rows; each bad row is reported by line or index.
//! A manifest that cannot be read at all, or that has no usable row, is an error.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct ManifestEntry {
    /// As written in the manifest; the app resolves relative URLs against the manifest's own URL.
    pub url: String,
    pub name: String,
    pub sha256: Option<String>,
    pub metadata: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
    /// Rows that were skipped, each with where and why.
    pub problems: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    #[error("the manifest is empty")]
    Empty,
    #[error("the CSV manifest cannot be read: {0}")]
    Csv(String),
    #[error("the CSV manifest has no `url` column (columns: {0})")]
    NoUrlColumn(String),
    #[error("the JSON manifest cannot be read: {0}")]
    Json(String),
    #[error("the JSON manifest must be a list of objects, or an object with an `items` or `assets` list")]
    JsonShape,
    #[error("no row of the manifest names an image:\n  {}", .0.join("\n  "))]
    NoEntries(Vec<String>),
}

/// Column names accepted for the image location, first match wins.
const URL_KEYS: [&str; 5] = ["url", "uri", "image_url", "image", "key"];

/// Parses a manifest, telling JSON from CSV by its first non-blank character.
pub fn parse_manifest(text: &str) -> Result<Manifest, ManifestError> {
    let text = text.trim_start_matches('\u{feff}');
    match text.trim_start().chars().next() {
        None => Err(ManifestError::Empty),
        Some('[') | Some('{') => parse_json(text),
        Some(_) => parse_csv(text),
    }
}

fn parse_csv(text: &str) -> Result<Manifest, ManifestError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ManifestError::Csv(e.to_string()))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let url_col = URL_KEYS
        .iter()
        .find_map(|k| headers.iter().position(|h| h == k))
        .ok_or_else(|| ManifestError::NoUrlColumn(headers.join(", ")))?;
    let mut manifest = Manifest::default();
    for (row, record) in reader.records().enumerate() {
        // Line 1 is the header.
        let line = row + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                manifest.problems.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        for (i, value) in record.iter().enumerate() {
            if i != url_col && !value.is_empty() {
                if let Some(h) = headers.get(i) {
                    fields.insert(h.clone(), Value::String(value.to_owned()));
                }
            }
        }
        let url = record.get(url_col).unwrap_or("").to_owned();
        match entry_from(url, fields) {
            Ok(e) => manifest.entries.push(e),
            Err(why) => manifest.problems.push(format!("line {line}: {why}")),
        }
    }
    finish(manifest)
}

fn parse_json(text: &str) -> Result<Manifest, ManifestError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ManifestError::Json(e.to_string()))?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(obj) => match obj.get("items").or_else(|| obj.get("assets")) {
            Some(Value::Array(items)) => items,
            _ => return Err(ManifestError::JsonShape),
        },
        _ => return Err(ManifestError::JsonShape),
    };
    let mut manifest = Manifest::default();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else {
            manifest.problems.push(format!("item {i}: not an object"));
            continue;
        };
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        let mut url = None;
        for (k, v) in obj {
            let key = k.to_ascii_lowercase();
            if url.is_none() && URL_KEYS.contains(&key.as_str()) {
                url = Some(v.as_str().unwrap_or("").to_owned());
            } else if key == "metadata" {
                if let Value::Object(meta) = v {
                    fields.extend(meta.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            } else {
                fields.insert(key, v.clone());
            }
        }
        match entry_from(url.unwrap_or_default(), fields) {
            Ok(e) => manifest.entries.push(e),
            Err(why) => manifest.problems.push(format!("item {i}: {why}")),
        }
    }
    finish(manifest)
}

/// Pulls `name` and `sha256` out of the row's fields; everything else is metadata.
fn entry_from(url: String, mut fields: BTreeMap<String, Value>) -> Result<ManifestEntry, String> {
    if url.trim().is_empty() {
        return Err("no image URL".to_owned());
    }
    let sha256 = match fields.remove("sha256") {
        None => None,
        Some(Value::String(s)) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(s.to_ascii_lowercase())
        }
        Some(other) => return Err(format!("sha256 {other} is not 64 hex digits")),
    };
    let name = match fields.remove("name") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => file_name_of(&url),
    };
    Ok(ManifestEntry {
        url,
        name,
        sha256,
        metadata: fields,
    })
}

/// The last path segment of a URL, without query or fragment.
pub fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or(path)
        .to_owned()
}

fn finish(manifest: Manifest) -> Result<Manifest, ManifestError> {
    if manifest.entries.is_empty() {
        return Err(ManifestError::NoEntries(if manifest.problems.is_empty() {
            vec!["the manifest has no rows".to_owned()]
        } else {
            manifest.problems
        }));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_metadata_columns() {
        let m = parse_manifest(
            "url,organ,name\nhttps://x.org/a/t1.png?sig=1,liver,\nb/t2.jpg,kidney,Kidney 2\n",
        )
        .unwrap();
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].name, "t1.png");
        assert_eq!(m.entries[0].metadata["organ"], "liver");
        assert_eq!(m.entries[1].name, "Kidney 2");
        assert!(m.problems.is_empty());
    }

    #[test]
    fn csv_bad_rows_are_reported_and_good_rows_kept() {
        let m = parse_manifest("url,organ\n,liver\nt2.png,kidney\n").unwrap();
        assert_eq!(m.entries.len(), 1);
        assert_eq!(m.problems, ["line 2: no image URL"]);
    }

    #[test]
    fn csv_without_url_column_names_the_columns() {
        let err = parse_manifest("path,organ\na.png,liver\n").unwrap_err();
        assert_eq!(err, ManifestError::NoUrlColumn("path, organ".into()));
    }

    #[test]
    fn json_list_and_object_forms() {
        let list = r#"[{"url": "a.png", "organ": "liver", "metadata": {"stain": "HE"}}]"#;
        let m = parse_manifest(list).unwrap();
        assert_eq!(m.entries[0].metadata["organ"], "liver");
        assert_eq!(m.entries[0].metadata["stain"], "HE");
        let obj = r#"{"items": [{"image": "b.png", "sha256": "AB"}, {"uri": "c.png"}]}"#;
        let m = parse_manifest(obj).unwrap();
        assert_eq!(m.entries.len(), 1);
        assert!(m.problems[0].contains("item 0: sha256"));
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        assert!(matches!(
            parse_manifest("[{\"url\": "),
            Err(ManifestError::Json(_))
        ));
        assert_eq!(parse_manifest("{\"x\": 1}"), Err(ManifestError::JsonShape));
        assert_eq!(parse_manifest("  \n"), Err(ManifestError::Empty));
        assert!(matches!(
            parse_manifest("[1, 2]"),
            Err(ManifestError::NoEntries(_))
        ));
    }
}
