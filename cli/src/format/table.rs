//! Column layout like Go's `text/tabwriter` as the docker CLI configures it
//! (`minwidth 10, tabwidth 1, padding 3, ' '`): every column but the last is
//! as wide as its widest cell plus 3 spaces, and at least 10; the last column
//! is not padded. Widths count characters (runes), as Go does.

use std::io::{self, Write};

pub struct Table {
    rows: Vec<Vec<String>>,
    min_width: usize,
    padding: usize,
}

impl Table {
    /// A table with docker's settings and the given header row.
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
            min_width: 10,
            padding: 3,
        }
    }

    /// A table without a header row and with its own layout.
    #[cfg(test)]
    pub fn with_layout(min_width: usize, padding: usize) -> Table {
        Table {
            rows: Vec::new(),
            min_width,
            padding,
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in &self.rows {
            // The last cell of each row is not tab-terminated: it does not
            // take part in column widths.
            for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
                let w = cell.chars().count() + self.padding;
                widths[i] = widths[i].max(w).max(self.min_width);
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count();
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }

    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(self.render().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_widest_cell_plus_three_at_least_ten() {
        let mut t = Table::new(&["CONTAINER ID", "IMAGE", "PORTS", "NAMES"]);
        t.push(vec![
            "0123456789ab".into(),
            "hello:latest".into(),
            "".into(),
            "happy_bell".into(),
        ]);
        assert_eq!(
            t.render(),
            "CONTAINER ID   IMAGE          PORTS     NAMES\n\
             0123456789ab   hello:latest             happy_bell\n"
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::with_layout(0, 1);
        t.push(vec!["\"ab…\"".into(), "x".into()]);
        t.push(vec!["abcdef".into(), "y".into()]);
        assert_eq!(t.render(), "\"ab…\"  x\nabcdef y\n");
    }
}
