//! The interactive chat: history above, an input line below, the peer's
//! presence and "typing…" in the title. Messages show ✓ when the server has
//! them and ✓✓ once one of the peer's devices took delivery.
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

struct State {
    me: String,
    peer_label: String,
    input: String,
    history: Vec<HistoryEntry>,
    peer_typing: bool,
    presence: String,
    status: String,
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
    let [top, body, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(3),
    ])
    .areas(f.area());
    let typing = if s.peer_typing { " — typing…" } else { "" };
    f.render_widget(
        Paragraph::new(format!(
            " {} ({}){typing} · {} · Esc quits",
            s.peer_label, s.presence, s.status
        )),
        top,
    );
    let lines: Vec<Line> = s
        .history
        .iter()
        .map(|m| {
            let who = if m.sender_user_id == s.me {
                "me"
            } else {
                s.peer_label.as_str()
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

pub async fn run(client: Client, peer_id: String, peer_label: String) -> anyhow::Result<()> {
    let conv = client.conversation_with(&peer_id).await?;
    let mut events = client.events();
    client.connect();
    let mut state = State {
        me: client.user_id().to_owned(),
        peer_label,
        input: String::new(),
        history: client.history(&conv, 500).await?,
        peer_typing: false,
        presence: "?".into(),
        status: "connecting".into(),
    };

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
            tokio::select! {
                Some(ev) = keys.recv() => {
                    let Event::Key(k) = ev else { continue };
                    if k.kind != KeyEventKind::Press {
                        continue;
                    }
                    match k.code {
                        KeyCode::Esc => break,
                        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => break,
                        KeyCode::Enter if !state.input.trim().is_empty() => {
                            let text = std::mem::take(&mut state.input);
                            if let Err(e) = client.queue_text(&peer_id, &text).await {
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
                        let _ = client.subscribe_presence(std::slice::from_ref(&peer_id)).await;
                    }
                    ClientEvent::Disconnected { reason } => state.status = format!("reconnecting ({reason})"),
                    ClientEvent::Message(m) if m.conversation_id == conv => {
                        state.peer_typing = false;
                        state.history = client.history(&conv, 500).await?;
                        let _ = client.mark_read(&conv, m.seq).await;
                    }
                    ClientEvent::Sent(_) | ClientEvent::Receipt(_) | ClientEvent::SendFailed { .. } => {
                        state.history = client.history(&conv, 500).await?;
                    }
                    ClientEvent::Typing { conversation_id, typing, .. } if conversation_id == conv => state.peer_typing = typing,
                    ClientEvent::Presence { user_id, online, last_seen } if user_id == peer_id => {
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
