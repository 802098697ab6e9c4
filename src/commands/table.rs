//! The region table printed by `mkimg plan` and `mkimg inspect`: one row per
//! region with start/end in bytes and sectors, size, type, UUIDs and label.

use serde::Serialize;

use crate::board::size::format_bytes;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub region: String,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    pub size: u64,
    #[serde(rename = "type")]
    pub type_: String,
    pub uuid: String,
    pub label: String,
}

/// Render rows as an aligned text table; LBAs are first and last (inclusive).
pub fn render_rows(rows: &[Row], sector_size: u64) -> String {
    let header = [
        "REGION",
        "START",
        "END",
        "FIRST LBA",
        "LAST LBA",
        "SIZE",
        "TYPE",
        "UUID",
        "LABEL",
    ];
    let mut cells: Vec<[String; 9]> = vec![header.map(String::from)];
    for row in rows {
        cells.push([
            row.region.clone(),
            row.start.to_string(),
            row.end.to_string(),
            (row.start / sector_size).to_string(),
            (row.end.div_ceil(sector_size).saturating_sub(1)).to_string(),
            format_bytes(row.size),
            row.type_.clone(),
            row.uuid.clone(),
            row.label.clone(),
        ]);
    }
    let mut widths = [0usize; 9];
    for line in &cells {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &cells {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            let numeric = (1..=5).contains(&i);
            if numeric {
                text.push_str(&format!("{cell:>w$}  ", w = widths[i]));
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}
