//! The terminal: raw mode, the alternate screen, mouse and paste reporting, and getting all of
//! it back to how it was, whether the interface returns, fails or panics.

use std::io::{self, Stdout, Write};
use std::sync::{Mutex, Once};
use std::thread::ThreadId;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    KeyboardEnhancementFlags, PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use ratatui::crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode,
    enable_raw_mode, supports_keyboard_enhancement,
};
use ratatui::crossterm::{cursor, execute};

/// The terminal in interface mode. Dropping it restores the terminal.
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
    active: bool,
}

/// Puts the terminal back: leaves the alternate screen, turns off mouse and paste reporting and
/// raw mode, shows the cursor. Safe to call more than once, and when setup never happened.
pub fn restore() {
    let mut out = io::stdout();
    // Terminals that did not take the keyboard flags ignore the pop.
    let _ = execute!(
        out,
        PopKeyboardEnhancementFlags,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// The thread that draws the interface; only its panics end the interface.
static UI_THREAD: Mutex<Option<ThreadId>> = Mutex::new(None);

/// Installs (once per process) a panic hook that restores the terminal before the panic
/// message is printed, so that the message is readable and the shell usable. A panic on
/// another thread (the backend's worker) does not end the interface: the worker reports it as
/// a failure and the screen is redrawn.
pub fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ui = UI_THREAD.lock().map(|t| *t).unwrap_or(None);
            if ui.is_none_or(|id| id == std::thread::current().id()) {
                restore();
            }
            previous(info);
        }));
    });
}

fn enter() -> io::Result<()> {
    enable_raw_mode()?;
    let mut out = io::stdout();
    execute!(
        out,
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )?;
    // Where the terminal supports it, Shift-Enter is told apart from Enter.
    if supports_keyboard_enhancement().unwrap_or(false) {
        execute!(
            out,
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
        )?;
    }
    Ok(())
}

impl TerminalGuard {
    /// Takes over the terminal. On failure, whatever was changed is put back.
    pub fn new() -> io::Result<Self> {
        install_panic_hook();
        if let Ok(mut t) = UI_THREAD.lock() {
            *t = Some(std::thread::current().id());
        }
        if let Err(e) = enter() {
            restore();
            return Err(e);
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(terminal) => Ok(TerminalGuard {
                terminal,
                active: true,
            }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }

    /// Hands the terminal back for a while (to an editor).
    pub fn suspend(&mut self) {
        if self.active {
            restore();
            self.active = false;
        }
    }

    /// Takes the terminal again after [`TerminalGuard::suspend`], redrawing everything.
    pub fn resume(&mut self) -> io::Result<()> {
        if !self.active {
            enter()?;
            self.active = true;
            self.repaint()?;
        }
        Ok(())
    }

    /// Clears the screen and makes the next draw paint every cell, for when something else
    /// wrote on it (an editor, a panic message from another thread). Unlike
    /// [`Terminal::clear`] it asks the terminal nothing, so it cannot wait on a reply.
    pub fn repaint(&mut self) -> io::Result<()> {
        execute!(io::stdout(), Clear(ClearType::All))?;
        // The screen is blank now; drawing a blank frame makes the terminal's idea of the screen
        // blank too, so the next frame is drawn in full.
        self.terminal
            .draw(|f| f.render_widget(ratatui::widgets::Clear, f.area()))?;
        Ok(())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        if self.active {
            restore();
        }
    }
}
