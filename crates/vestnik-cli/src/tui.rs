//! The interactive chat: the account's conversations on the left (Tab moves
//! to the next direct chat or group, • marks unread ones), the open one's
//! history on the right above an input line, with the peer's presence and
//! "typing…" in the title. Messages show ✓ when the server has them and ✓✓
//! once one of the peer's devices took delivery.
use std::collections::HashSet;

use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::{Frame, Terminal};
use vestnik_client::{Client, ClientEvent, HistoryEntry, MessageState};

/// One conversation in the list.
pub struct Entry {
    pub id: String,
    /// `direct`, `group` or `channel`.
    pub kind: String,
    /// The partner's or the group's name.
    pub label: String,
    /// The other user of a direct chat.
    pub peer: Option<String>,
}

impl Entry {
    /// Channels are read with `channel read`; the screen writes to chats and groups.
    pub fn writable(&self) -> bool {
        (self.kind == "direct" && self.peer.is_some()) || self.kind == "group"
    }
}

struct State {
    me: String,
    list: Vec<Entry>,
    current: usize,
    unread: HashSet<String>,
    input: String,
    history: Vec<HistoryEntry>,
    peer_typing: bool,
    presence: String,
    status: String,
}

impl State {
    fn open(&self) -> &Entry {
        &self.list[self.current]
    }
}

fn ticks(m: &HistoryEntry, me: &str) -> &'static str {
    if m.sender_user_id != me {
        return "";
    }
    match m.state {
        MessageState::Failed => " ✗",
        MessageState::Pending => " …",
        _ if !m.delivered_to.is_empty() => " ✓✓",
        _ => " ✓",
    }
}

fn draw(f: &mut Frame, s: &State) {
    let [side, main] =
        Layout::horizontal([Constraint::Length(26), Constraint::Min(20)]).areas(f.area());
    let entries: Vec<Line> = s
        .list
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mark = if i == s.current {
                "▶"
            } else if s.unread.contains(&e.id) {
                "•"
            } else {
                " "
            };
            let kind = match e.kind.as_str() {
                "group" => "#",
                "channel" => "»",
                _ => "",
            };
            Line::from(format!("{mark} {kind}{}", e.label))
        })
        .collect();
    f.render_widget(
        Paragraph::new(entries).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" conversations "),
        ),
        side,
    );
    let [top, body, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(3),
    ])
    .areas(main);
    let typing = if s.peer_typing { " — typing…" } else { "" };
    f.render_widget(
        Paragraph::new(format!(
            " {} ({}){typing} · {} · Tab next · Esc quits",
            s.open().label,
            s.presence,
            s.status
        )),
        top,
    );
    let lines: Vec<Line> = s
        .history
        .iter()
        .map(|m| {
            let who = if m.sender_user_id == s.me {
                "me"
            } else if s.open().kind == "direct" {
                s.open().label.as_str()
            } else {
                m.sender_user_id.get(..8).unwrap_or(&m.sender_user_id)
            };
            Line::from(format!("{who}: {}{}", m.body, ticks(m, &s.me)))
        })
        .collect();
    let height = body.height.saturating_sub(2) as usize;
    let skip = lines.len().saturating_sub(height);
    let visible: Vec<Line> = lines.into_iter().skip(skip).collect();
    f.render_widget(
        Paragraph::new(visible)
            .block(Block::default().borders(Borders::ALL).title(" messages "))
            .wrap(Wrap { trim: false }),
        body,
    );
    f.render_widget(
        Paragraph::new(s.input.as_str()).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" say something "),
        ),
        input,
    );
}

/// Opens the entry at `index`: its history, and its peer's presence.
async fn switch(client: &Client, state: &mut State, index: usize) -> anyhow::Result<()> {
    state.current = index;
    state.peer_typing = false;
    state.presence = "?".into();
    let id = state.open().id.clone();
    state.unread.remove(&id);
    state.history = client.history(&id, 500).await?;
    if let Some(peer) = state.open().peer.clone() {
        let _ = client.subscribe_presence(&[peer]).await;
    } else {
        state.presence = "group".into();
    }
    Ok(())
}

/// Runs the screen over `list`, opening `current` first.
pub async fn run(client: Client, list: Vec<Entry>, current: usize) -> anyhow::Result<()> {
    let mut events = client.events();
    client.connect();
    let mut state = State {
        me: client.user_id().to_owned(),
        list,
        current,
        unread: HashSet::new(),
        input: String::new(),
        history: Vec::new(),
        peer_typing: false,
        presence: "?".into(),
        status: "connecting".into(),
    };
    switch(&client, &mut state, current).await?;

    enable_raw_mode()?;
    let mut stdout = std::io::stdout();
    execute!(stdout, EnterAlternateScreen)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(stdout))?;
    // crossterm's reader blocks, so it lives on its own thread.
    let (keys_tx, mut keys) = tokio::sync::mpsc::channel::<Event>(64);
    std::thread::spawn(move || {
        while let Ok(ev) = crossterm::event::read() {
            if keys_tx.blocking_send(ev).is_err() {
                break;
            }
        }
    });

    let result: anyhow::Result<()> = async {
        let mut typing_sent = false;
        loop {
            terminal.draw(|f| draw(f, &state))?;
            let conv = state.open().id.clone();
            tokio::select! {
                Some(ev) = keys.recv() => {
                    let Event::Key(k) = ev else { continue };
                    if k.kind != KeyEventKind::Press {
                        continue;
                    }
                    match k.code {
                        KeyCode::Esc => break,
                        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => break,
                        KeyCode::Tab => {
                            let n = state.list.len();
                            if let Some(next) = (1..=n)
                                .map(|d| (state.current + d) % n)
                                .find(|&i| state.list[i].writable())
                            {
                                if typing_sent {
                                    let _ = client.set_typing(&conv, false).await;
                                    typing_sent = false;
                                }
                                switch(&client, &mut state, next).await?;
                            }
                        }
                        KeyCode::Enter if !state.input.trim().is_empty() => {
                            let text = std::mem::take(&mut state.input);
                            let queued = match state.open().peer.clone() {
                                Some(peer) => client.queue_text(&peer, &text).await,
                                None => client.queue_group_text(&conv, &text).await,
                            };
                            if let Err(e) = queued {
                                state.status = format!("not sent: {e}");
                            }
                            if typing_sent {
                                let _ = client.set_typing(&conv, false).await;
                                typing_sent = false;
                            }
                            state.history = client.history(&conv, 500).await?;
                        }
                        KeyCode::Backspace => {
                            state.input.pop();
                        }
                        KeyCode::Char(c) => {
                            state.input.push(c);
                            if !typing_sent {
                                let _ = client.set_typing(&conv, true).await;
                                typing_sent = true;
                            }
                        }
                        _ => {}
                    }
                }
                Some(e) = events.recv() => match e {
                    ClientEvent::Connected => {
                        state.status = "connected".into();
                        if let Some(peer) = state.open().peer.clone() {
                            let _ = client.subscribe_presence(&[peer]).await;
                        }
                    }
                    ClientEvent::Disconnected { reason } => state.status = format!("reconnecting ({reason})"),
                    ClientEvent::Message(m) if m.conversation_id == conv => {
                        state.peer_typing = false;
                        state.history = client.history(&conv, 500).await?;
                        let _ = client.mark_read(&conv, m.seq).await;
                    }
                    ClientEvent::Message(m) => {
                        state.unread.insert(m.conversation_id);
                    }
                    ClientEvent::Sent(_)
                    | ClientEvent::Receipt(_)
                    | ClientEvent::SendFailed { .. }
                    | ClientEvent::Edited { .. }
                    | ClientEvent::System(_) => {
                        state.history = client.history(&conv, 500).await?;
                    }
                    ClientEvent::Typing { conversation_id, typing, .. } if conversation_id == conv => state.peer_typing = typing,
                    ClientEvent::Presence { user_id, online, last_seen } if state.open().peer.as_deref() == Some(user_id.as_str()) => {
                        state.presence = match (online, last_seen) {
                            (Some(true), _) => "online".into(),
                            (Some(false), Some(t)) => format!("last seen {}", super::time(t)),
                            (Some(false), None) => "offline".into(),
                            (None, _) => "hidden".into(),
                        };
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    }
    .await;

    disable_raw_mode()?;
    execute!(terminal.backend_mut(), LeaveAlternateScreen)?;
    client.close().await;
    result
}
