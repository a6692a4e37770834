//! The catalog: every image of a project as a row of fields (its manifest's metadata columns, size,
//! stage, status, labels per class, pre-labels), filters layered on them, value counts for charts, and
//! saved selections ("slices"), which are named queries evaluated again whenever the data changes.
//!
//! Rows are built once per change of the project and filtered in memory: a query over 10,000 rows is a
//! linear scan of small maps (`lamina bench catalog` measures it).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::labels::{Asset, Instance, Tool};

/// A field's value: text (a manifest column, the stage) or a number (size, counts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Text(String),
}

impl Value {
    /// The value as a chart or a picker shows it.
    pub fn label(&self) -> String {
        match self {
            Value::Text(t) => t.clone(),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Value::Number(n) => format!("{n}"),
        }
    }
}

/// Fields every row has, beside the manifest's columns.
pub const FIELD_STAGE: &str = "stage";
pub const FIELD_STATUS: &str = "status";
pub const FIELD_WIDTH: &str = "width";
pub const FIELD_HEIGHT: &str = "height";
pub const FIELD_LABELS: &str = "labels";
pub const FIELD_PRELABELS: &str = "pre-labels";
pub const FIELD_LABELER: &str = "labeler";
pub const FIELD_IMPORTED: &str = "imported";

/// One image as the catalog sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub asset_id: String,
    pub name: String,
    pub fields: BTreeMap<String, Value>,
    /// Labels per class id (pending pre-labels left out: they are not labels yet).
    pub classes: BTreeMap<String, u32>,
}

/// How many labels of each class an image has, and its pending pre-labels. Kept on the image's record
/// (recomputed with its stage on every change of its labels), so the catalog never reads every label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelCounts {
    /// Labels per class id; pending pre-labels are left out: they are not labels yet.
    #[serde(default)]
    pub classes: BTreeMap<String, u32>,
    #[serde(default)]
    pub prelabels: u32,
    /// Who last changed a label of the image (the author in its provenance), if anyone signed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeler: Option<String>,
}

impl LabelCounts {
    pub fn of(instances: &[Instance]) -> LabelCounts {
        let mut counts = LabelCounts::default();
        let mut last: Option<&Instance> = None;
        for i in instances {
            if i.provenance.tool == Tool::PreLabel {
                counts.prelabels += 1;
                continue;
            }
            *counts.classes.entry(i.class_id.clone()).or_default() += 1;
            if i.provenance.author.is_some()
                && last.is_none_or(|l| i.provenance.updated > l.provenance.updated)
            {
                last = Some(i);
            }
        }
        counts.labeler = last.and_then(|i| i.provenance.author.clone());
        counts
    }
}

/// The row of an image from its record and its instances.
pub fn row_of(asset: &Asset, instances: &[Instance]) -> Row {
    row_of_counts(asset, &LabelCounts::of(instances))
}

/// The row of an image from its record, its label counts and the day it was imported (`YYYY-MM-DD`).
pub fn row_of_record(asset: &Asset, counts: &LabelCounts, imported: Option<&str>) -> Row {
    let mut row = row_of_counts(asset, counts);
    if let Some(day) = imported.and_then(|t| t.get(..10)) {
        row.fields
            .insert(FIELD_IMPORTED.into(), Value::Text(day.to_owned()));
    }
    row
}

/// The row of an image from its record and its label counts. Metadata columns keep their names; a
/// number or a boolean in the manifest stays a number (booleans as 0/1), and so does text that reads
/// back as the same number (a CSV's `38`, not `007`); anything else is text.
pub fn row_of_counts(asset: &Asset, counts: &LabelCounts) -> Row {
    let mut fields = BTreeMap::new();
    for (key, value) in &asset.metadata {
        let v = match value {
            serde_json::Value::Number(n) => n.as_f64().map(Value::Number),
            serde_json::Value::Bool(b) => Some(Value::Number(f64::from(u8::from(*b)))),
            serde_json::Value::String(s) if !s.trim().is_empty() => Some(number_in(s)),
            serde_json::Value::Null | serde_json::Value::String(_) => None,
            other => Some(Value::Text(other.to_string())),
        };
        if let Some(v) = v {
            fields.insert(key.clone(), v);
        }
    }
    fields.insert(FIELD_STAGE.into(), Value::Text(asset.stage.label().into()));
    fields.insert(
        FIELD_STATUS.into(),
        Value::Text(format!("{:?}", asset.status).to_lowercase()),
    );
    fields.insert(FIELD_WIDTH.into(), Value::Number(f64::from(asset.width)));
    fields.insert(FIELD_HEIGHT.into(), Value::Number(f64::from(asset.height)));
    fields.insert(
        FIELD_LABELS.into(),
        Value::Number(f64::from(counts.classes.values().sum::<u32>())),
    );
    fields.insert(
        FIELD_PRELABELS.into(),
        Value::Number(f64::from(counts.prelabels)),
    );
    if let Some(who) = &counts.labeler {
        fields.insert(FIELD_LABELER.into(), Value::Text(who.clone()));
    }
    Row {
        asset_id: asset.id.clone(),
        name: asset.name.clone(),
        fields,
        classes: counts.classes.clone(),
    }
}

/// A CSV cell's text as a number when it is one written plainly, else as text.
fn number_in(text: &str) -> Value {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && Value::Number(n).label() == text => Value::Number(n),
        _ => Value::Text(text.to_owned()),
    }
}

/// One condition on a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Filter {
    /// The field's value (as its label) is one of these; a row without the field never matches.
    OneOf {
        field: String,
        values: BTreeSet<String>,
    },
    /// The field is a number within [min, max] (either end open).
    Range {
        field: String,
        #[serde(default)]
        min: Option<f64>,
        #[serde(default)]
        max: Option<f64>,
    },
    /// At least one label of this class.
    HasClass { class_id: String },
    /// The name contains this text, case-insensitively.
    NameContains { text: String },
}

impl Filter {
    pub fn matches(&self, row: &Row) -> bool {
        match self {
            Filter::OneOf { field, values } => row
                .fields
                .get(field)
                .is_some_and(|v| values.contains(&v.label())),
            Filter::Range { field, min, max } => match row.fields.get(field) {
                Some(Value::Number(n)) => {
                    min.is_none_or(|m| *n >= m) && max.is_none_or(|m| *n <= m)
                }
                _ => false,
            },
            Filter::HasClass { class_id } => row.classes.get(class_id).is_some_and(|n| *n > 0),
            Filter::NameContains { text } => row
                .name
                .to_lowercase()
                .contains(&text.trim().to_lowercase()),
        }
    }
}

/// Filters that all hold (an empty query matches every row).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub filters: Vec<Filter>,
}

impl Query {
    pub fn matches(&self, row: &Row) -> bool {
        self.filters.iter().all(|f| f.matches(row))
    }

    /// Indices of the rows that match, in row order.
    pub fn select(&self, rows: &[Row]) -> Vec<usize> {
        (0..rows.len())
            .filter(|&i| self.matches(&rows[i]))
            .collect()
    }

    /// The values picked for a text field (none: the field is not filtered).
    pub fn values_of(&self, field: &str) -> BTreeSet<String> {
        self.filters
            .iter()
            .find_map(|f| match f {
                Filter::OneOf { field: f, values } if f == field => Some(values.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Picks or unpicks one value of a text field; the field's filter goes when no value is left.
    pub fn toggle_value(&mut self, field: &str, value: &str, on: bool) {
        let mut values = self.values_of(field);
        if on {
            values.insert(value.to_owned());
        } else {
            values.remove(value);
        }
        let filter = (!values.is_empty()).then(|| Filter::OneOf {
            field: field.to_owned(),
            values,
        });
        self.replace(
            |f| matches!(f, Filter::OneOf { field: f, .. } if f == field),
            filter,
        );
    }

    pub fn range_of(&self, field: &str) -> (Option<f64>, Option<f64>) {
        self.filters
            .iter()
            .find_map(|f| match f {
                Filter::Range { field: f, min, max } if f == field => Some((*min, *max)),
                _ => None,
            })
            .unwrap_or((None, None))
    }

    /// Sets a number field's range; the filter goes when both ends are open.
    pub fn set_range(&mut self, field: &str, min: Option<f64>, max: Option<f64>) {
        let filter = (min.is_some() || max.is_some()).then(|| Filter::Range {
            field: field.to_owned(),
            min,
            max,
        });
        self.replace(
            |f| matches!(f, Filter::Range { field: f, .. } if f == field),
            filter,
        );
    }

    pub fn has_class(&self) -> Option<String> {
        self.filters.iter().find_map(|f| match f {
            Filter::HasClass { class_id } => Some(class_id.clone()),
            _ => None,
        })
    }

    pub fn set_has_class(&mut self, class_id: Option<String>) {
        let filter = class_id
            .filter(|c| !c.is_empty())
            .map(|class_id| Filter::HasClass { class_id });
        self.replace(|f| matches!(f, Filter::HasClass { .. }), filter);
    }

    pub fn name_text(&self) -> String {
        self.filters
            .iter()
            .find_map(|f| match f {
                Filter::NameContains { text } => Some(text.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    pub fn set_name_text(&mut self, text: &str) {
        let filter = (!text.trim().is_empty()).then(|| Filter::NameContains {
            text: text.to_owned(),
        });
        self.replace(|f| matches!(f, Filter::NameContains { .. }), filter);
    }

    /// Puts `filter` where the filter `is_it` finds was (or last), or removes that one with `None`.
    fn replace(&mut self, is_it: impl Fn(&Filter) -> bool, filter: Option<Filter>) {
        match (self.filters.iter().position(is_it), filter) {
            (Some(i), Some(f)) => self.filters[i] = f,
            (Some(i), None) => {
                self.filters.remove(i);
            }
            (None, Some(f)) => self.filters.push(f),
            (None, None) => {}
        }
    }
}

/// Orders `selected` rows by a field (numbers by value, before text, which goes by its label; rows
/// without the field last) or, for `None`, by name; ties keep their order. `descending` reverses the
/// order of the rows that have the field.
pub fn sort_rows(rows: &[Row], selected: &mut [usize], field: Option<&str>, descending: bool) {
    use std::cmp::Ordering;
    let key = |i: usize| -> Option<(u8, f64, String)> {
        let row = &rows[i];
        match field {
            None => Some((1, 0.0, row.name.to_lowercase())),
            Some(f) => row.fields.get(f).map(|v| match v {
                Value::Number(n) => (0, *n, String::new()),
                Value::Text(t) => (1, 0.0, t.to_lowercase()),
            }),
        }
    };
    selected.sort_by(|&a, &b| match (key(a), key(b)) {
        (Some(x), Some(y)) => {
            let order =
                x.0.cmp(&y.0)
                    .then(x.1.total_cmp(&y.1))
                    .then_with(|| x.2.cmp(&y.2));
            if descending {
                order.reverse()
            } else {
                order
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
}

/// How many of the `selected` rows have each value of `field` (as labels), most first, then by value;
/// rows without the field count under `None`.
pub fn value_counts(rows: &[Row], selected: &[usize], field: &str) -> Vec<(Option<String>, usize)> {
    let mut counts: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for &i in selected {
        *counts
            .entry(rows[i].fields.get(field).map(Value::label))
            .or_default() += 1;
    }
    let mut out: Vec<(Option<String>, usize)> = counts.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Labels per class over the `selected` rows.
pub fn class_counts(rows: &[Row], selected: &[usize]) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for &i in selected {
        for (class, n) in &rows[i].classes {
            *out.entry(class.clone()).or_default() += u64::from(*n);
        }
    }
    out
}

/// The fields rows have, for the filter pickers: each with whether it is a number column (at least
/// [`NUMERIC_SHARE`] of its values are numbers; the others are bad values, named by [`mixed_columns`]).
pub fn fields(rows: &[Row]) -> Vec<(String, bool)> {
    let mut out: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for row in rows {
        for (k, v) in &row.fields {
            let (numbers, all) = out.entry(k.as_str()).or_default();
            *numbers += usize::from(matches!(v, Value::Number(_)));
            *all += 1;
        }
    }
    out.into_iter()
        .map(|(k, (numbers, all))| (k.to_owned(), is_numeric(numbers, all)))
        .collect()
}

/// A column is a number column when at least this share of its values are numbers.
pub const NUMERIC_SHARE: f64 = 0.8;

fn is_numeric(numbers: usize, all: usize) -> bool {
    all > 0 && numbers as f64 >= NUMERIC_SHARE * all as f64
}

/// Bad values of number columns: for each metadata column whose values are mostly numbers but not all,
/// one line naming it, how many values are not numbers and the first few images with them (a typo like
/// `4O` for `40`). The images are kept; range filters and sorting by the column leave them out or last.
pub fn mixed_columns<'a>(
    items: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, serde_json::Value>)>,
) -> Vec<String> {
    const NAMED: usize = 5;
    /// Per column: how many values are numbers, and the images whose value is not (with it).
    type Tally<'a> = (usize, Vec<(&'a str, String)>);
    let mut columns: BTreeMap<&str, Tally> = BTreeMap::new();
    for (name, metadata) in items {
        for (key, value) in metadata {
            let v = match value {
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => None,
                serde_json::Value::String(s) if s.trim().is_empty() => continue,
                serde_json::Value::String(s) => match number_in(s) {
                    Value::Number(_) => None,
                    Value::Text(t) => Some(t),
                },
                serde_json::Value::Null => continue,
                other => Some(other.to_string()),
            };
            let (numbers, bad) = columns.entry(key.as_str()).or_default();
            match v {
                None => *numbers += 1,
                Some(text) => bad.push((name, text)),
            }
        }
    }
    columns
        .into_iter()
        .filter(|(_, (numbers, bad))| !bad.is_empty() && is_numeric(*numbers, numbers + bad.len()))
        .map(|(column, (numbers, bad))| {
            let shown: Vec<String> = bad
                .iter()
                .take(NAMED)
                .map(|(name, text)| format!("{name} ({text:?})"))
                .collect();
            let more = bad.len().saturating_sub(NAMED);
            format!(
                "column {column}: {} of {} values are not numbers: {}{}; those images are kept, and left out of its range filter",
                bad.len(),
                numbers + bad.len(),
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            )
        })
        .collect()
}

/// A saved selection: a named query, evaluated again whenever the project changes, so an image added
/// later that matches is in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub query: Query,
    /// Images picked by hand (find-similar results, a multi-select): in the slice whatever the query.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pinned: BTreeSet<String>,
}

impl Slice {
    /// Indices of the rows in the slice, in row order.
    pub fn select(&self, rows: &[Row]) -> Vec<usize> {
        let query_used = !self.query.filters.is_empty() || self.pinned.is_empty();
        (0..rows.len())
            .filter(|&i| {
                self.pinned.contains(&rows[i].asset_id)
                    || (query_used && self.query.matches(&rows[i]))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{InstanceStatus, LabelStatus, Provenance};
    use crate::rle::CompressedRle;

    fn asset(id: &str, organ: Option<&str>, n_nuclei: Option<f64>) -> Asset {
        let mut metadata = BTreeMap::new();
        if let Some(o) = organ {
            metadata.insert("organ".into(), serde_json::json!(o));
        }
        if let Some(n) = n_nuclei {
            metadata.insert("n_nuclei".into(), serde_json::json!(n));
        }
        metadata.insert("note".into(), serde_json::json!(""));
        metadata.insert("slide".into(), serde_json::json!("007"));
        metadata.insert("csv_count".into(), serde_json::json!("38"));
        Asset {
            id: id.into(),
            name: format!("{id}.png"),
            sha256: String::new(),
            width: 256,
            height: 256,
            metadata,
            uri: None,
            status: LabelStatus::Unlabeled,
            stage: Default::default(),
        }
    }

    fn label(class: &str, tool: Tool) -> Instance {
        Instance {
            id: "i".into(),
            asset_id: "a".into(),
            class_id: class.into(),
            mask: CompressedRle {
                size: [1, 1],
                counts: "1".into(),
            },
            bbox: [0, 0, 0, 0],
            area: 0,
            provenance: Provenance {
                tool,
                prompts: vec![],
                model_id: None,
                author: None,
                created: String::new(),
                updated: String::new(),
                score: None,
            },
            status: InstanceStatus::Draft,
        }
    }

    fn rows() -> Vec<Row> {
        vec![
            row_of(
                &asset("a", Some("liver"), Some(12.0)),
                &[label("neo", Tool::Brush), label("neo", Tool::PreLabel)],
            ),
            row_of(&asset("b", Some("kidney"), Some(40.0)), &[]),
            row_of(
                &asset("c", Some("liver"), None),
                &[label("inf", Tool::SamClick)],
            ),
            row_of(&asset("d", None, Some(7.0)), &[]),
        ]
    }

    #[test]
    fn rows_hold_metadata_size_stage_and_labels_per_class_without_pending_pre_labels() {
        let r = &rows()[0];
        assert_eq!(r.fields["organ"], Value::Text("liver".into()));
        assert_eq!(r.fields["n_nuclei"], Value::Number(12.0));
        assert_eq!(r.fields["csv_count"], Value::Number(38.0), "a CSV's number");
        assert_eq!(
            r.fields["slide"],
            Value::Text("007".into()),
            "an id that looks like a number"
        );
        assert!(
            !r.fields.contains_key("note"),
            "an empty column is no value"
        );
        assert_eq!(r.fields[FIELD_STAGE].label(), "To label");
        assert_eq!(r.fields[FIELD_LABELS], Value::Number(1.0));
        assert_eq!(r.fields[FIELD_PRELABELS], Value::Number(1.0));
        assert_eq!(r.classes, [("neo".to_string(), 1)].into());
    }

    #[test]
    fn counts_kept_on_the_record_give_the_same_row_as_the_labels() {
        let a = asset("a", Some("liver"), None);
        let labels = [
            label("neo", Tool::Brush),
            label("neo", Tool::PreLabelAccepted),
            label("inf", Tool::PreLabel),
        ];
        let counts = LabelCounts::of(&labels);
        assert_eq!(counts.prelabels, 1);
        assert_eq!(counts.classes, [("neo".to_string(), 2)].into());
        assert_eq!(row_of_counts(&a, &counts), row_of(&a, &labels));
        assert_eq!(counts.labeler, None, "nobody signed these");
        let mut signed = labels.clone();
        signed[0].provenance.author = Some("ana".into());
        signed[0].provenance.updated = "2026-12-01T10:00:00Z".into();
        signed[1].provenance.author = Some("ben".into());
        signed[1].provenance.updated = "2026-12-02T10:00:00Z".into();
        signed[2].provenance.author = Some("model".into());
        signed[2].provenance.updated = "2026-12-03T10:00:00Z".into();
        let row = row_of_record(&a, &LabelCounts::of(&signed), Some("2026-11-30T08:00:00Z"));
        assert_eq!(
            row.fields[FIELD_LABELER],
            Value::Text("ben".into()),
            "the latest person, not the pending pre-label"
        );
        assert_eq!(row.fields[FIELD_IMPORTED], Value::Text("2026-11-30".into()));
        let back: LabelCounts = serde_json::from_str("{}").unwrap();
        assert_eq!(
            back,
            LabelCounts::default(),
            "a record from before counts were kept"
        );
    }

    #[test]
    fn filters_layer_and_counts_follow_them() {
        let rows = rows();
        let organ = Filter::OneOf {
            field: "organ".into(),
            values: ["liver".to_string()].into(),
        };
        let q = Query {
            filters: vec![organ.clone()],
        };
        assert_eq!(q.select(&rows), [0, 2]);
        let q = Query {
            filters: vec![
                organ,
                Filter::Range {
                    field: "n_nuclei".into(),
                    min: Some(10.0),
                    max: None,
                },
            ],
        };
        assert_eq!(q.select(&rows), [0], "c has no count, so no range holds");
        let has = Query {
            filters: vec![Filter::HasClass {
                class_id: "inf".into(),
            }],
        };
        assert_eq!(has.select(&rows), [2]);
        let name = Query {
            filters: vec![Filter::NameContains {
                text: " B.P".into(),
            }],
        };
        assert_eq!(name.select(&rows), [1]);
        let all = Query::default().select(&rows);
        assert_eq!(
            value_counts(&rows, &all, "organ"),
            [
                (Some("liver".to_string()), 2),
                (None, 1),
                (Some("kidney".to_string()), 1)
            ]
        );
        assert_eq!(
            class_counts(&rows, &all),
            [("inf".to_string(), 1), ("neo".to_string(), 1)].into()
        );
        let f = fields(&rows);
        assert!(
            f.contains(&("organ".to_string(), false))
                && f.contains(&("n_nuclei".to_string(), true))
        );
    }

    #[test]
    fn a_10000_row_manifest_with_bad_values_imports_every_good_row_and_names_the_bad_ones() {
        // 10,000 rows; every 997th has a typo in its count, row 5000 has no URL, row 7000 too many cells.
        let mut csv = String::from("url,organ,n_nuclei\n");
        for i in 0..10_000 {
            match i {
                5000 => csv.push_str(",liver,12\n"),
                7000 => csv.push_str("t7000.png,liver,12,extra\n"),
                i if i % 997 == 0 => csv.push_str(&format!("t{i}.png,liver,4O\n")),
                i => csv.push_str(&format!(
                    "t{i}.png,{},{}\n",
                    ["liver", "kidney"][i % 2],
                    i % 90
                )),
            }
        }
        let manifest = crate::image_list::parse_manifest(&csv).unwrap();
        assert_eq!(
            manifest.entries.len(),
            9_998,
            "every row but the two broken ones"
        );
        assert_eq!(manifest.problems.len(), 2, "{:?}", manifest.problems);
        assert!(
            manifest.problems[0].starts_with("line 5002"),
            "{:?}",
            manifest.problems
        );
        assert!(
            manifest.problems[1].starts_with("line 7002"),
            "{:?}",
            manifest.problems
        );
        let problems = mixed_columns(
            manifest
                .entries
                .iter()
                .map(|e| (e.name.as_str(), &e.metadata)),
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(
                "column n_nuclei: 11 of 9998 values are not numbers: t0.png (\"4O\"), t997.png (\"4O\")"
            ),
            "{}",
            problems[0]
        );
        assert!(problems[0].contains("and 6 more"), "{}", problems[0]);
        // The column stays a number column for the catalog; organ (all text) is no problem.
        let rows: Vec<Row> = manifest
            .entries
            .iter()
            .map(|e| {
                let mut a = asset(&e.name, None, None);
                a.metadata = e.metadata.clone();
                row_of(&a, &[])
            })
            .collect();
        assert!(fields(&rows).contains(&("n_nuclei".to_string(), true)));
        let dense = Query {
            filters: vec![Filter::Range {
                field: "n_nuclei".into(),
                min: Some(0.0),
                max: None,
            }],
        };
        assert_eq!(
            dense.select(&rows).len(),
            9_998 - 11,
            "the typos are left out of the range"
        );
    }

    #[test]
    fn sorting_by_a_number_field_puts_rows_without_it_last_either_way() {
        let rows = rows();
        let mut all: Vec<usize> = (0..rows.len()).collect();
        sort_rows(&rows, &mut all, Some("n_nuclei"), false);
        assert_eq!(all, [3, 0, 1, 2], "7, 12, 40, then c without a count");
        sort_rows(&rows, &mut all, Some("n_nuclei"), true);
        assert_eq!(all, [1, 0, 3, 2]);
        sort_rows(&rows, &mut all, None, true);
        assert_eq!(all, [3, 2, 1, 0], "by name, descending");
    }

    #[test]
    fn the_filter_pickers_edit_one_filter_per_field_and_remove_it_when_cleared() {
        let rows = rows();
        let mut q = Query::default();
        q.toggle_value("organ", "liver", true);
        q.toggle_value("organ", "kidney", true);
        q.set_range("n_nuclei", Some(10.0), None);
        q.set_has_class(Some("neo".into()));
        q.set_name_text("a");
        assert_eq!(q.filters.len(), 4);
        assert_eq!(q.values_of("organ").len(), 2);
        assert_eq!(q.range_of("n_nuclei"), (Some(10.0), None));
        assert_eq!(q.select(&rows), [0]);
        q.toggle_value("organ", "liver", false);
        q.toggle_value("organ", "kidney", false);
        q.set_range("n_nuclei", None, None);
        q.set_has_class(None);
        q.set_name_text("  ");
        assert_eq!(q, Query::default(), "every picker cleared leaves no filter");
    }

    #[test]
    fn a_slice_is_its_query_re_evaluated_plus_images_pinned_by_hand() {
        let mut rows = rows();
        let mut slice = Slice {
            id: "s".into(),
            project_id: "p".into(),
            name: "kidney".into(),
            query: Query {
                filters: vec![Filter::OneOf {
                    field: "organ".into(),
                    values: ["kidney".to_string()].into(),
                }],
            },
            pinned: BTreeSet::new(),
        };
        assert_eq!(slice.select(&rows), [1]);
        // An image imported later that matches is in it.
        rows.push(row_of(&asset("e", Some("kidney"), None), &[]));
        assert_eq!(slice.select(&rows), [1, 4]);
        slice.pinned.insert("d".into());
        assert_eq!(slice.select(&rows), [1, 3, 4]);
        // Pins alone: only them, not every image.
        slice.query = Query::default();
        assert_eq!(slice.select(&rows), [3]);
        let back: Slice = serde_json::from_str(&serde_json::to_string(&slice).unwrap()).unwrap();
        assert_eq!(back, slice);
    }
}
