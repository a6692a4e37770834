//! The catalog's thumbnail grid, virtualised: which cells a scroll position shows (only those are in the
//! page, so 10,000 images scroll like 50), and where the arrow keys move the cursor. Lengths are CSS
//! pixels of the grid's scroll box (*screen*).

use std::ops::Range;

/// The grid's geometry: square cells of `cell_screen` px (gap included) in rows as wide as the box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridLayout {
    pub cell_screen: f64,
    pub columns: usize,
    pub total: usize,
}

/// Rows drawn above and below the visible ones, so a scroll shows no empty band (each costs a row of
/// cells to build whenever the listed images change).
const OVERSCAN_ROWS: usize = 1;

impl GridLayout {
    /// As many columns as fit in `width_screen` (at least one).
    pub fn new(width_screen: f64, cell_screen: f64, total: usize) -> GridLayout {
        let columns = if cell_screen > 0.0 && width_screen.is_finite() {
            ((width_screen / cell_screen).floor() as usize).max(1)
        } else {
            1
        };
        GridLayout {
            cell_screen,
            columns,
            total,
        }
    }

    pub fn rows(&self) -> usize {
        self.total.div_ceil(self.columns)
    }

    /// The height of the whole grid, which the scroll box scrolls through.
    pub fn height_screen(&self) -> f64 {
        self.rows() as f64 * self.cell_screen
    }

    /// The cells (indices into the listed images) to draw for a scroll box scrolled to `scroll_top_screen`
    /// and `viewport_screen` tall.
    pub fn visible(&self, scroll_top_screen: f64, viewport_screen: f64) -> Range<usize> {
        if self.total == 0 || self.cell_screen <= 0.0 {
            return 0..0;
        }
        let first_row = (scroll_top_screen.max(0.0) / self.cell_screen).floor() as usize;
        let last_row = ((scroll_top_screen.max(0.0) + viewport_screen.max(0.0)) / self.cell_screen)
            .ceil() as usize;
        let from_row = first_row.saturating_sub(OVERSCAN_ROWS);
        let to_row = (last_row + OVERSCAN_ROWS).min(self.rows());
        (from_row * self.columns).min(self.total)..(to_row * self.columns).min(self.total)
    }

    /// The cell's top-left corner within the grid.
    pub fn position_screen(&self, index: usize) -> (f64, f64) {
        let row = index / self.columns;
        let col = index % self.columns;
        (col as f64 * self.cell_screen, row as f64 * self.cell_screen)
    }

    /// Where an arrow key moves the cursor from `index`: left/right by one, up/down by a row; it stays
    /// put at the grid's edges (down from the last full row goes to the last cell).
    pub fn step(&self, index: usize, key: GridKey) -> usize {
        if self.total == 0 {
            return 0;
        }
        let last = self.total - 1;
        let index = index.min(last);
        match key {
            GridKey::Left => index.saturating_sub(1),
            GridKey::Right => (index + 1).min(last),
            GridKey::Up => index.checked_sub(self.columns).unwrap_or(index),
            GridKey::Down if index / self.columns + 1 < self.rows() => {
                (index + self.columns).min(last)
            }
            GridKey::Down => index,
        }
    }

    /// The scroll position that brings `index` into a viewport of `viewport_screen` px, or `None` when it
    /// is already fully in view.
    pub fn scroll_to_show(
        &self,
        index: usize,
        scroll_top_screen: f64,
        viewport_screen: f64,
    ) -> Option<f64> {
        let (_, top) = self.position_screen(index);
        let bottom = top + self.cell_screen;
        if top < scroll_top_screen {
            Some(top)
        } else if bottom > scroll_top_screen + viewport_screen {
            Some((bottom - viewport_screen).max(0.0))
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridKey {
    Left,
    Right,
    Up,
    Down,
}

impl GridKey {
    /// The key of a `KeyboardEvent.key`, if it is an arrow.
    pub fn of(key: &str) -> Option<GridKey> {
        Some(match key {
            "ArrowLeft" => GridKey::Left,
            "ArrowRight" => GridKey::Right,
            "ArrowUp" => GridKey::Up,
            "ArrowDown" => GridKey::Down,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_rows_in_view_and_one_either_side_are_drawn() {
        // 10,000 images, 5 columns of 120 px in a 600 px box.
        let g = GridLayout::new(610.0, 120.0, 10_000);
        assert_eq!((g.columns, g.rows()), (5, 2000));
        assert_eq!(g.height_screen(), 240_000.0);
        assert_eq!(g.visible(0.0, 600.0), 0..30, "rows 0..5 plus 1 below");
        // Scrolled to row 1000: rows 999..1006.
        assert_eq!(g.visible(120_000.0, 600.0), 4995..5030);
        // At the very end the range stops at the last image.
        assert_eq!(g.visible(239_400.0, 600.0).end, 10_000);
        assert_eq!(
            GridLayout::new(50.0, 120.0, 3).columns,
            1,
            "one column at least"
        );
        assert_eq!(GridLayout::new(600.0, 120.0, 0).visible(0.0, 600.0), 0..0);
    }

    #[test]
    fn arrows_move_by_one_or_a_row_and_stop_at_the_edges() {
        let g = GridLayout::new(400.0, 100.0, 10); // 4 columns: rows of 4, 4, 2
        assert_eq!(g.step(0, GridKey::Left), 0);
        assert_eq!(g.step(3, GridKey::Right), 4, "right wraps to the next row");
        assert_eq!(g.step(9, GridKey::Right), 9);
        assert_eq!(g.step(5, GridKey::Up), 1);
        assert_eq!(g.step(1, GridKey::Up), 1);
        assert_eq!(g.step(1, GridKey::Down), 5);
        assert_eq!(
            g.step(7, GridKey::Down),
            9,
            "to the last cell of a short last row"
        );
        assert_eq!(g.step(8, GridKey::Down), 8);
        assert_eq!(GridKey::of("ArrowUp"), Some(GridKey::Up));
        assert_eq!(GridKey::of("Enter"), None);
    }

    #[test]
    fn the_cursor_is_scrolled_into_view_only_when_outside_it() {
        let g = GridLayout::new(400.0, 100.0, 100);
        assert_eq!(g.scroll_to_show(5, 0.0, 300.0), None);
        assert_eq!(
            g.scroll_to_show(13, 0.0, 300.0),
            Some(100.0),
            "row 3 ends at 400"
        );
        assert_eq!(g.scroll_to_show(1, 250.0, 300.0), Some(0.0));
    }
}
