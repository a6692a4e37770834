//! From a foreign file's labels to Lamina instances on a project's images, in two steps: [`plan`]
//! works out everything (which image each one is, which class, what is skipped and why) and changes
//! nothing; [`ImportPlan::instances`] then builds the instances for the images the user lets it touch.

use std::collections::{BTreeMap, HashMap};

use lamina_core::labels::{Asset, ClassDef, Instance, InstanceStatus, Ontology, Provenance, Tool};
use lamina_core::rle::{CompressedRle, Rle};

use crate::foreign::{hex_color, ForeignLabels};

/// The project an import lands in: its images, its classes, and how many labels each image has now.
pub struct Target<'a> {
    pub assets: &'a [Asset],
    pub ontology: &'a Ontology,
    /// Labels per asset id now (images not listed have none).
    pub labels_now: HashMap<String, usize>,
}

/// Choices the user makes before the import.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// The class (id) given to instances the file leaves without a class; `None` skips them.
    pub unclassified_to: Option<String>,
    /// Classes the project lacks are added to it (with the file's colour when it has one) instead of
    /// their instances being skipped.
    pub add_missing_classes: bool,
    /// Explicit mappings, file class name → project class id; an empty id ignores that class.
    pub class_map: BTreeMap<String, String>,
}

/// What to do with an image that already has labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Existing {
    /// Leave it as it is (the default: nothing is overwritten without asking).
    #[default]
    Skip,
    /// Add the imported labels beside its own.
    Add,
    /// Remove its labels and put the imported ones in their place.
    Replace,
}

impl Existing {
    pub fn parse(s: &str) -> Result<Existing, String> {
        match s {
            "skip" => Ok(Existing::Skip),
            "add" => Ok(Existing::Add),
            "replace" => Ok(Existing::Replace),
            other => Err(format!("'{other}' is not skip, add or replace")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    Sha256,
    Name,
}

/// A class of the file and where its instances go.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassMapping {
    /// The file's class name (`None`: instances without a class).
    pub name: Option<String>,
    /// The project class id, `None` when its instances are skipped.
    pub class_id: Option<String>,
    pub instances: usize,
}

/// One instance ready to become a label.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedInstance {
    pub class_id: String,
    pub rle: Rle,
    pub score: Option<f64>,
}

/// A project image the file has labels for.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedImage {
    pub asset_id: String,
    pub name: String,
    pub matched_by: MatchedBy,
    pub instances: Vec<PlannedInstance>,
    /// Labels the image has now (the import asks before touching them).
    pub labels_now: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportPlan {
    pub images: Vec<PlannedImage>,
    pub classes: Vec<ClassMapping>,
    /// Classes the import adds to the project.
    pub new_classes: Vec<ClassDef>,
    /// Everything left out, with why.
    pub skipped: Vec<String>,
}

/// Matches the file's images and classes to the project's. Changes nothing.
pub fn plan(foreign: &ForeignLabels, target: &Target, options: &PlanOptions) -> ImportPlan {
    let mut out = ImportPlan {
        skipped: foreign.skipped.clone(),
        ..Default::default()
    };
    let classes = map_classes(foreign, target.ontology, options, &mut out);
    for image in &foreign.images {
        let Some((asset, matched_by)) =
            match_image(target.assets, image.sha256.as_deref(), &image.name)
        else {
            out.skipped.push(format!(
                "{}: no image of this name or content in the project ({} labels)",
                image.name,
                image.instances.len()
            ));
            continue;
        };
        if let (Some(w), Some(h)) = (image.width, image.height) {
            if (w, h) != (asset.width, asset.height) {
                out.skipped.push(format!(
                    "{}: the file says {w}×{h} but the project's image is {}×{}",
                    image.name, asset.width, asset.height
                ));
                continue;
            }
        }
        if out.images.iter().any(|p| p.asset_id == asset.id) {
            out.skipped.push(format!(
                "{}: the file has this image twice; the first one is used",
                image.name
            ));
            continue;
        }
        let mut planned = PlannedImage {
            asset_id: asset.id.clone(),
            name: asset.name.clone(),
            matched_by,
            instances: Vec::new(),
            labels_now: target.labels_now.get(&asset.id).copied().unwrap_or(0),
        };
        for instance in &image.instances {
            let Some(class_id) = classes.get(&instance.class_name).cloned().flatten() else {
                continue; // counted once per class in the summary
            };
            match instance.shape.to_mask(asset.width, asset.height) {
                Ok(mask) if mask.area() > 0 => planned.instances.push(PlannedInstance {
                    class_id,
                    rle: Rle::from_mask(&mask),
                    score: instance.score,
                }),
                Ok(_) => out.skipped.push(format!(
                    "{}, {}: no pixel of it is inside the image",
                    image.name, instance.at
                )),
                Err(e) => out
                    .skipped
                    .push(format!("{}, {}: {e}", image.name, instance.at)),
            }
        }
        out.images.push(planned);
    }
    out
}

/// Class name (or none) → project class id (or skipped), recorded in the plan's summary.
fn map_classes(
    foreign: &ForeignLabels,
    ontology: &Ontology,
    options: &PlanOptions,
    out: &mut ImportPlan,
) -> HashMap<Option<String>, Option<String>> {
    let mut counts: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for instance in foreign.images.iter().flat_map(|i| &i.instances) {
        *counts.entry(instance.class_name.clone()).or_default() += 1;
    }
    let mut map = HashMap::new();
    for (name, instances) in counts {
        let class_id = match &name {
            None => options.unclassified_to.clone(),
            Some(name) => match options.class_map.get(name) {
                Some(id) if id.is_empty() => None,
                Some(id) => Some(id.clone()),
                None => find_class(ontology, name)
                    .or_else(|| find_new(&out.new_classes, name))
                    .or_else(|| {
                        options
                            .add_missing_classes
                            .then(|| add_class(ontology, foreign, name, out))
                    }),
            },
        };
        if class_id.is_none() {
            out.skipped.push(match &name {
                None => format!(
                    "{instances} labels without a class (choose a class for them to keep them)"
                ),
                Some(n) => {
                    format!("{instances} labels of class '{n}', which the project does not have")
                }
            });
        }
        out.classes.push(ClassMapping {
            name: name.clone(),
            class_id: class_id.clone(),
            instances,
        });
        map.insert(name, class_id);
    }
    map
}

/// A project class by name or id, ignoring case and surrounding space.
fn find_class(ontology: &Ontology, name: &str) -> Option<String> {
    let wanted = name.trim().to_lowercase();
    ontology
        .classes
        .iter()
        .find(|c| c.name.to_lowercase() == wanted || c.id.to_lowercase() == wanted)
        .map(|c| c.id.clone())
}

fn find_new(new: &[ClassDef], name: &str) -> Option<String> {
    new.iter().find(|c| c.name == name).map(|c| c.id.clone())
}

fn add_class(
    ontology: &Ontology,
    foreign: &ForeignLabels,
    name: &str,
    out: &mut ImportPlan,
) -> String {
    let base: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    let base = if base.is_empty() {
        "class".to_owned()
    } else {
        base
    };
    let taken =
        |id: &str| ontology.class(id).is_some() || out.new_classes.iter().any(|c| c.id == id);
    let mut id = base.clone();
    let mut n = 2;
    while taken(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    let color = foreign.class_colors.get(name).copied().unwrap_or_else(|| {
        PALETTE[(ontology.classes.len() + out.new_classes.len()) % PALETTE.len()]
    });
    out.new_classes.push(ClassDef {
        id: id.clone(),
        name: name.trim().to_owned(),
        color: hex_color(color),
    });
    id
}

/// Colours for added classes the file gives none for (distinct on H&E's pink and purple).
const PALETTE: [[u8; 3]; 8] = [
    [0, 158, 115],
    [230, 159, 0],
    [86, 180, 233],
    [240, 228, 66],
    [0, 114, 178],
    [213, 94, 0],
    [204, 121, 167],
    [120, 120, 120],
];

/// The project image a foreign image is: the same sha256 if the file gives one, else the same file
/// name, else the same name without its extension (QuPath writes `<image>.geojson`), each only if it is
/// unique. A Label Studio upload prefix (`1a2b3c4d-`) is ignored.
pub fn match_image<'a>(
    assets: &'a [Asset],
    sha256: Option<&str>,
    name: &str,
) -> Option<(&'a Asset, MatchedBy)> {
    if let Some(sha) = sha256 {
        if let Some(a) = assets.iter().find(|a| a.sha256.eq_ignore_ascii_case(sha)) {
            return Some((a, MatchedBy::Sha256));
        }
    }
    let wanted = file_name(name);
    let unique = |found: Vec<&'a Asset>| (found.len() == 1).then(|| found[0]);
    let candidates = [wanted.to_owned(), strip_upload_prefix(wanted).to_owned()];
    for candidate in &candidates {
        if let Some(a) = unique(assets.iter().filter(|a| a.name == *candidate).collect()) {
            return Some((a, MatchedBy::Name));
        }
    }
    for candidate in &candidates {
        let stem = stem(candidate);
        if let Some(a) = unique(
            assets
                .iter()
                .filter(|a| self::stem(&a.name) == stem)
                .collect(),
        ) {
            return Some((a, MatchedBy::Name));
        }
    }
    None
}

/// The last part of a path or URL, without a query.
pub fn file_name(name: &str) -> &str {
    let name = name.split(['?', '#']).next().unwrap_or(name);
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}

/// Label Studio stores uploads as `<8 hex digits>-<original name>`.
fn strip_upload_prefix(name: &str) -> &str {
    match name.split_once('-') {
        Some((prefix, rest))
            if prefix.len() == 8
                && prefix.chars().all(|c| c.is_ascii_hexdigit())
                && !rest.is_empty() =>
        {
            rest
        }
        _ => name,
    }
}

/// Who made the imported labels and when, for their provenance.
pub struct Origin<'a> {
    /// "QuPath", "Labelbox", ...: kept as the labels' author when no person is named.
    pub author: &'a str,
    pub timestamp: &'a str,
    /// Set when the file is a model's predictions (their labels become pre-labels).
    pub model_id: Option<&'a str>,
}

/// The labels for one image, and whether they replace the image's own.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageImport {
    pub asset_id: String,
    pub instances: Vec<Instance>,
    pub replace: bool,
}

impl ImportPlan {
    /// Instances to write, per image, under the user's choice for images that have labels. Images that
    /// the choice leaves alone are listed in the second value by name.
    pub fn instances(
        &self,
        existing: Existing,
        origin: &Origin,
        mut new_id: impl FnMut() -> String,
    ) -> (Vec<ImageImport>, Vec<String>) {
        let mut out = Vec::new();
        let mut left = Vec::new();
        for image in self.images.iter().filter(|i| !i.instances.is_empty()) {
            if image.labels_now > 0 && existing == Existing::Skip {
                left.push(image.name.clone());
                continue;
            }
            let instances = image
                .instances
                .iter()
                .map(|p| to_instance(p, &image.asset_id, origin, new_id()))
                .collect();
            out.push(ImageImport {
                asset_id: image.asset_id.clone(),
                instances,
                replace: existing == Existing::Replace,
            });
        }
        (out, left)
    }

    /// Images that have labels now and labels in the file: the ones the user is asked about.
    pub fn already_labeled(&self) -> usize {
        self.images
            .iter()
            .filter(|i| i.labels_now > 0 && !i.instances.is_empty())
            .count()
    }

    pub fn instance_count(&self) -> usize {
        self.images.iter().map(|i| i.instances.len()).sum()
    }

    /// The plan in a few lines, as the user reads it before saying yes.
    pub fn summary(&self) -> String {
        let by_sha = self
            .images
            .iter()
            .filter(|i| i.matched_by == MatchedBy::Sha256)
            .count();
        let mut lines = vec![format!(
            "{} labels on {} images ({} matched by content, {} by name)",
            self.instance_count(),
            self.images.len(),
            by_sha,
            self.images.len() - by_sha
        )];
        for c in &self.classes {
            let name = c.name.as_deref().unwrap_or("(no class)");
            lines.push(match &c.class_id {
                Some(id) if self.new_classes.iter().any(|n| &n.id == id) => {
                    format!("class {name} → {id} (new), {} labels", c.instances)
                }
                Some(id) => format!("class {name} → {id}, {} labels", c.instances),
                None => format!("class {name} → skipped, {} labels", c.instances),
            });
        }
        let labeled = self.already_labeled();
        if labeled > 0 {
            lines.push(format!("{labeled} of these images already have labels"));
        }
        if !self.skipped.is_empty() {
            lines.push(format!("skipped ({}):", self.skipped.len()));
            lines.extend(self.skipped.iter().map(|s| format!("  {s}")));
        }
        lines.join("\n")
    }
}

fn to_instance(p: &PlannedInstance, asset_id: &str, origin: &Origin, id: String) -> Instance {
    let compressed: CompressedRle = p.rle.compress();
    Instance {
        id,
        asset_id: asset_id.to_owned(),
        class_id: p.class_id.clone(),
        mask: compressed,
        bbox: p.rle.bbox(),
        area: p.rle.area(),
        provenance: Provenance {
            tool: if origin.model_id.is_some() {
                Tool::PreLabel
            } else {
                Tool::Import
            },
            prompts: Vec::new(),
            model_id: origin.model_id.map(str::to_owned),
            author: Some(origin.author.to_owned()),
            created: origin.timestamp.to_owned(),
            updated: origin.timestamp.to_owned(),
            score: None,
        },
        status: InstanceStatus::Draft,
    }
}
