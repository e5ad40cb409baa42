//! `spectacular board [run]`: a run's work packages in four columns (planned, doing, review,
//! done), each with its state, lane, agent, model, cost and age; `--json` for tools. The
//! states and what moves a package between them: `query::board`.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::{Context, Exit, Failure, Outcome};
use crate::query::board::{self, Board, Card, Column, WpState};
use crate::query::{cut as fit, usd, width, wrap};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id (a unique prefix, or `last`); the latest run when omitted.
    pub run: Option<String>,
    /// Print JSON: every work package with its state, column, transitions and age.
    #[arg(long)]
    pub json: bool,
}

/// Narrower than this, columns are listed one under the other.
const MIN_COLUMN: usize = 22;
/// Wider columns are no easier to read.
const MAX_COLUMN: usize = 40;
const GAP: usize = 2;

pub fn run(context: &Context, args: Args) -> Outcome {
    let store = context.store();
    let run_id = store
        .resolve_run(args.run.as_deref().unwrap_or("last"))
        .map_err(|e| Failure::usage(e.to_string()))?;
    let events = store
        .read_events(&run_id)
        .map_err(|e| Failure::internal(e.to_string()))?;
    let board = board::board(&events);
    let until = board::reference_time(&board, SystemTime::now());
    if args.json {
        let text = serde_json::to_string_pretty(&board_json(&board, until))
            .map_err(|e| Failure::internal(e.to_string()))?;
        outln!("{text}")?;
        return Ok(Exit::Success);
    }
    let paint = Paint(context.color_stdout);
    out!(
        "{}",
        super::printable(&render(&board, until, terminal_width(), paint))
    )?;
    Ok(Exit::Success)
}

fn board_json(board: &Board, until: SystemTime) -> Value {
    let mut value = serde_json::to_value(board).unwrap_or(Value::Null);
    if let Some(cards) = value["work_packages"].as_array_mut() {
        for (card, c) in cards.iter_mut().zip(&board.work_packages) {
            card["age_ms"] = json!(board::age_ms(&c.since, until));
        }
    }
    let mut columns = serde_json::Map::new();
    for column in Column::ALL {
        columns.insert(column.as_str().into(), json!(board.column(column).count()));
    }
    value["columns"] = Value::Object(columns);
    value
}

/// The width to fit: `COLUMNS` when set, else the terminal's, else 100.
fn terminal_width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return columns;
    }
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        // SAFETY: TIOCGWINSZ fills the `winsize` we pass and reads nothing else.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        if ok && size.ws_col > 0 {
            return size.ws_col as usize;
        }
    }
    100
}

#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn state(self, state: WpState, text: &str) -> String {
        use anstyle::AnsiColor as C;
        let style = match state {
            WpState::Blocked => C::Red.on_default().bold(),
            WpState::Done | WpState::Approved => C::Green.on_default(),
            WpState::Claimed | WpState::InProgress => C::Yellow.on_default(),
            WpState::ForReview | WpState::InReview => C::Cyan.on_default(),
            WpState::Planned => anstyle::Style::new(),
            WpState::Canceled => anstyle::Style::new().dimmed(),
        };
        self.with(style, text)
    }

    fn bold(self, text: &str) -> String {
        self.with(anstyle::Style::new().bold(), text)
    }

    fn with(self, style: anstyle::Style, text: &str) -> String {
        if self.0 && !text.is_empty() {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
}

/// One cell of a card: plain text and how to paint it once wrapped to its column.
struct Line {
    text: String,
    state: Option<WpState>,
}

/// `in_progress · 12s` while the run runs (how long in that state); `done · worked 3s` once
/// it ended (how long its attempts ran); then its rework loops and lane.
fn state_line(card: &Card, until: SystemTime, ended: bool) -> String {
    let mut line = card.state.as_str().to_string();
    if ended {
        if card.attempts > 0 {
            line.push_str(&format!(" · worked {}", board::age_text(card.work_ms)));
        }
    } else {
        let age = board::age_ms(&card.since, until)
            .map(board::age_text)
            .unwrap_or_else(|| "-".into());
        line.push_str(&format!(" · {age}"));
    }
    match card.loops {
        0 => {}
        1 => line.push_str(" · 1 rework"),
        n => line.push_str(&format!(" · {n} reworks")),
    }
    if let Some(lane) = card.lane {
        line.push_str(&format!(" · lane {lane}"));
    }
    line
}

fn card_lines(card: &Card, until: SystemTime, ended: bool) -> Vec<Line> {
    let mut lines = Vec::new();
    let title = match &card.title {
        Some(t) => format!("{} {t}", card.work),
        None => card.work.clone(),
    };
    lines.push(Line {
        text: title,
        state: None,
    });
    lines.push(Line {
        text: state_line(card, until, ended),
        state: Some(card.state),
    });
    let who = [card.agent.as_deref(), card.model.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" / ");
    let cost = if card.cost_usd > 0.0 {
        usd(card.cost_usd)
    } else {
        String::new()
    };
    let who = match (who.is_empty(), cost.is_empty()) {
        (true, true) => String::new(),
        (false, true) => who,
        (true, false) => cost,
        (false, false) => format!("{who} · {cost}"),
    };
    if !who.is_empty() {
        lines.push(Line {
            text: who,
            state: None,
        });
    }
    if !card.note.is_empty() {
        lines.push(Line {
            text: card.note.clone(),
            state: (card.state == WpState::Blocked).then_some(WpState::Blocked),
        });
    }
    lines
}

fn header(board: &Board) -> String {
    format!(
        "run {}  mission {}  {}\n",
        board.run_id, board.mission, board.status
    )
}

/// The board for people: four columns side by side when they fit in `total` columns, else
/// one under the other.
fn render(board: &Board, until: SystemTime, total: usize, paint: Paint) -> String {
    let mut out = header(board);
    if board.work_packages.is_empty() {
        out.push_str("no work packages: no fan-out phase has expanded\n");
        return out;
    }
    let ended = board.ended_at.is_some();
    let column_width = (total.saturating_sub(GAP * 3) / 4).min(MAX_COLUMN);
    if column_width < MIN_COLUMN {
        return stacked(board, until, total, paint, out);
    }
    let columns: Vec<Vec<Vec<Line>>> = Column::ALL
        .iter()
        .map(|c| {
            board
                .column(*c)
                .map(|card| card_lines(card, until, ended))
                .collect()
        })
        .collect();
    // Each column as lines of (plain width, painted text).
    let mut blocks: Vec<Vec<(usize, String)>> = Vec::new();
    for (column, cards) in Column::ALL.iter().zip(&columns) {
        let mut block = Vec::new();
        let title = fit(
            &format!("{} ({})", column.as_str().to_uppercase(), cards.len()),
            column_width,
        );
        block.push((width(&title), paint.bold(&title)));
        for card in cards {
            block.push((0, String::new()));
            for line in card {
                // Wrapped, never cut: a long title or note takes more lines.
                for text in wrap(&line.text, column_width) {
                    let painted = match line.state {
                        Some(state) => paint.state(state, &text),
                        None => text.clone(),
                    };
                    block.push((width(&text), painted));
                }
            }
        }
        blocks.push(block);
    }
    let rows = blocks.iter().map(Vec::len).max().unwrap_or(0);
    for row in 0..rows {
        let mut line = String::new();
        for (i, block) in blocks.iter().enumerate() {
            let (w, text) = block.get(row).map_or((0, ""), |(w, t)| (*w, t.as_str()));
            line.push_str(text);
            if i + 1 < blocks.len() {
                line.push_str(&" ".repeat(column_width - w.min(column_width) + GAP));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Narrow terminals: each column a heading, each package one line.
fn stacked(
    board: &Board,
    until: SystemTime,
    total: usize,
    paint: Paint,
    mut out: String,
) -> String {
    for column in Column::ALL {
        let cards: Vec<&Card> = board.column(column).collect();
        out.push('\n');
        out.push_str(&paint.bold(&format!(
            "{} ({})",
            column.as_str().to_uppercase(),
            cards.len()
        )));
        out.push('\n');
        for card in cards {
            let lines = card_lines(card, until, board.ended_at.is_some());
            let text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
            // The whole card, wrapped: the first line indented by two, the rest by four.
            let room = total.max(MIN_COLUMN).saturating_sub(4);
            let state = card.state.as_str();
            let mut painted_state = false;
            for (i, line) in wrap(&text.join(" · "), room).into_iter().enumerate() {
                let indent = if i == 0 { "  " } else { "    " };
                // Paint the state where it is (it follows the title).
                let at = (!painted_state)
                    .then(|| line.find(&format!("· {state}")))
                    .flatten()
                    .map(|at| at + "· ".len());
                let line = match at {
                    Some(at) => {
                        painted_state = true;
                        format!(
                            "{}{}{}",
                            &line[..at],
                            paint.state(card.state, state),
                            &line[at + state.len()..]
                        )
                    }
                    None => line,
                };
                out.push_str(indent);
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_to_its_width_by_display_columns() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("a longer text", 8), "a longe…");
        assert_eq!(width(&fit("日本語のテキスト", 7)), 7);
    }
}
