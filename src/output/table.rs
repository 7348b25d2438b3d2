//! patronictl's table look: ASCII borders, the title set into the top border.

use comfy_table::{
    CellAlignment, ContentArrangement, ContentLineStyle, LineStyle, Table as Comfy, TableStyle,
};

const PATRONICTL: TableStyle = TableStyle::new()
    .top_border(LineStyle::new('+', '-', '+', '+'))
    .header_lines(ContentLineStyle::new('|', '|', '|'))
    .header_separator(LineStyle::new('+', '-', '+', '+'))
    .content_lines(ContentLineStyle::new('|', '|', '|'))
    .bottom_border(LineStyle::new('+', '-', '+', '+'));

pub struct Table {
    title: String,
    inner: Comfy,
}

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Self {
        let mut inner = Comfy::new();
        inner
            .load_style(PATRONICTL)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(headers.iter().copied());
        Table {
            title: title.into(),
            inner,
        }
    }

    pub fn right_align(&mut self, columns: &[usize]) -> &mut Self {
        for &c in columns {
            if let Some(col) = self.inner.column_mut(c) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        self
    }

    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        self.inner.add_row(cells);
        self
    }

    /// The table with `+ Title: ... ---+` as its top border, like patronictl.
    pub fn render(&self) -> String {
        let body = self.inner.to_string();
        let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
        if let Some(top) = lines.first_mut() {
            let label = format!("+ {} ", self.title);
            let width = top.chars().count();
            if label.chars().count() + 1 < width {
                let rest: String = top.chars().skip(label.chars().count()).collect();
                *top = format!("{label}{rest}");
            } else {
                *top = format!("{}+", label.trim_end());
            }
        }
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_sits_in_the_top_border() {
        let mut t = Table::new("Citus cluster: prod", &["Group", "Member", "Host"]);
        t.row(vec!["0".into(), "pg1".into(), "10.0.0.1".into()]);
        let s = t.render();
        let first = s.lines().next().unwrap();
        assert!(first.starts_with("+ Citus cluster: prod "), "{s}");
        assert!(first.ends_with('+'));
        assert_eq!(
            first.chars().count(),
            s.lines().nth(1).unwrap().chars().count()
        );
        assert!(s.contains("| Group | Member | Host     |"), "{s}");
    }
}
