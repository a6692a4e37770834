//! The labeling tools and the keyboard shortcuts, as data: the UI maps a key press to an [`Action`] here
//! and only carries it out, so the mapping is tested natively and listed in one place.

/// The labeling tools, in toolbar order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolKind {
    /// Segment suggestions from the model: hover, click, box.
    Suggest,
    Select,
    Brush,
    Eraser,
    Polygon,
    Box,
    Pan,
}

impl ToolKind {
    pub const ALL: [ToolKind; 7] = [
        ToolKind::Suggest,
        ToolKind::Select,
        ToolKind::Brush,
        ToolKind::Eraser,
        ToolKind::Polygon,
        ToolKind::Box,
        ToolKind::Pan,
    ];

    /// The key that picks the tool.
    pub fn key(self) -> &'static str {
        match self {
            ToolKind::Suggest => "s",
            ToolKind::Select => "v",
            ToolKind::Brush => "b",
            ToolKind::Eraser => "e",
            ToolKind::Polygon => "p",
            ToolKind::Box => "r",
            ToolKind::Pan => "h",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ToolKind::Suggest => "Suggest",
            ToolKind::Select => "Select",
            ToolKind::Brush => "Brush",
            ToolKind::Eraser => "Eraser",
            ToolKind::Polygon => "Polygon",
            ToolKind::Box => "Box",
            ToolKind::Pan => "Pan",
        }
    }
}

/// What a key press asks for. Some depend on what is going on (Enter accepts a suggestion or closes a
/// polygon; Backspace removes the last polygon vertex or deletes the selection): the UI decides those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Undo,
    Redo,
    SubmitImage,
    /// Enter: accept the suggestion being built, or close the polygon.
    Confirm,
    /// Esc: drop the suggestion, the polygon being drawn and the selection.
    Cancel,
    /// Backspace: the last polygon vertex if one is being drawn, else the selection.
    Back,
    DeleteSelected,
    NextImage,
    PreviousImage,
    BrushSmaller,
    BrushBigger,
    /// Keys 1-9: the class at this index (0-based) of the ontology.
    PickClass(usize),
    Tool(ToolKind),
    /// Review: approve the open image (A), reject it with its pinned issues (X), pin an issue at the next
    /// click (I), skip the image or take it back (K).
    Approve,
    Reject,
    PinIssue,
    Skip,
}

/// Review keys: letters no tool uses.
const REVIEW_KEYS: [(&str, Action); 4] = [
    ("a", Action::Approve),
    ("x", Action::Reject),
    ("i", Action::PinIssue),
    ("k", Action::Skip),
];

/// The action of a key press (`key` as the browser's `KeyboardEvent.key`; `ctrl` is Ctrl or Cmd).
pub fn action_for(key: &str, ctrl: bool, shift: bool) -> Option<Action> {
    Some(match key {
        "z" | "Z" if ctrl && shift => Action::Redo,
        "z" | "Z" if ctrl => Action::Undo,
        "y" if ctrl => Action::Redo,
        "Enter" if ctrl => Action::SubmitImage,
        "Enter" => Action::Confirm,
        "Escape" => Action::Cancel,
        "Backspace" => Action::Back,
        "Delete" => Action::DeleteSelected,
        "ArrowRight" | "." => Action::NextImage,
        "ArrowLeft" | "," => Action::PreviousImage,
        "[" => Action::BrushSmaller,
        "]" => Action::BrushBigger,
        _ if ctrl => return None,
        k if k.len() == 1 && matches!(k.as_bytes()[0], b'1'..=b'9') => {
            Action::PickClass(usize::from(k.as_bytes()[0] - b'1'))
        }
        // Shift is not needed, and Shift+A is still "approve", never a tool.
        k if REVIEW_KEYS.iter().any(|(r, _)| *r == k.to_lowercase()) => REVIEW_KEYS
            .iter()
            .find(|(r, _)| *r == k.to_lowercase())
            .map(|(_, a)| *a)?,
        k => Action::Tool(
            ToolKind::ALL
                .into_iter()
                .find(|t| t.key() == k.to_lowercase())?,
        ),
    })
}

/// Brush radius after `[` or `]`, in image pixels (1 to 40).
pub fn brush_radius_after(radius: f64, action: Action) -> f64 {
    match action {
        Action::BrushSmaller => (radius - 1.0).max(1.0),
        Action::BrushBigger => (radius + 1.0).min(40.0),
        _ => radius,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_its_own_key_in_either_case() {
        for tool in ToolKind::ALL {
            assert_eq!(
                action_for(tool.key(), false, false),
                Some(Action::Tool(tool))
            );
            let upper = tool.key().to_uppercase();
            assert_eq!(action_for(&upper, false, false), Some(Action::Tool(tool)));
        }
        let mut keys: Vec<_> = ToolKind::ALL.iter().map(|t| t.key()).collect();
        keys.dedup();
        assert_eq!(keys.len(), ToolKind::ALL.len());
    }

    #[test]
    fn undo_redo_and_submit_need_ctrl() {
        assert_eq!(action_for("z", true, false), Some(Action::Undo));
        assert_eq!(action_for("Z", true, true), Some(Action::Redo));
        assert_eq!(action_for("y", true, false), Some(Action::Redo));
        assert_eq!(action_for("Enter", true, false), Some(Action::SubmitImage));
        assert_eq!(action_for("Enter", false, false), Some(Action::Confirm));
        // Ctrl with a tool key is the browser's (Ctrl+S, Ctrl+P), not ours.
        assert_eq!(action_for("s", true, false), None);
        assert_eq!(action_for("p", true, false), None);
    }

    #[test]
    fn review_keys_are_their_own_and_need_no_ctrl() {
        assert_eq!(action_for("a", false, false), Some(Action::Approve));
        assert_eq!(action_for("X", false, true), Some(Action::Reject));
        assert_eq!(action_for("i", false, false), Some(Action::PinIssue));
        assert_eq!(action_for("k", false, false), Some(Action::Skip));
        assert_eq!(action_for("a", true, false), None, "Ctrl+A selects text");
        for (key, _) in REVIEW_KEYS {
            assert!(
                ToolKind::ALL.iter().all(|t| t.key() != key),
                "{key} is a tool's key"
            );
        }
    }

    #[test]
    fn digits_pick_classes_one_based() {
        assert_eq!(action_for("1", false, false), Some(Action::PickClass(0)));
        assert_eq!(action_for("9", false, false), Some(Action::PickClass(8)));
        assert_eq!(action_for("0", false, false), None);
        assert_eq!(action_for("q", false, false), None);
    }

    #[test]
    fn brush_radius_stays_between_1_and_40() {
        assert_eq!(brush_radius_after(1.0, Action::BrushSmaller), 1.0);
        assert_eq!(brush_radius_after(40.0, Action::BrushBigger), 40.0);
        assert_eq!(brush_radius_after(4.0, Action::BrushBigger), 5.0);
        assert_eq!(brush_radius_after(4.0, Action::Undo), 4.0);
    }
}
