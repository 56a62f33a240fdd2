//! Aerie's console on the physical UART: the escape key, and Aerie's own command line.
//!
//! The physical UART carries the guest's console. Every byte received from it goes
//! through [`Console::input`], which says what to do with it: hand it to the guest's
//! UART, run one of Aerie's console functions, or edit the line typed at Aerie's
//! prompt. The escape works as in QEMU's character-device multiplexer (QEMU
//! documentation, "Keys in the character backend multiplexer"): Ctrl-A, then a key.
//!
//! | keys | effect |
//! |---|---|
//! | Ctrl-A x | quit: power the machine off |
//! | Ctrl-A h | print the escape keys |
//! | Ctrl-A c | enter Aerie's console (a prompt, `aerie> `); again to leave it |
//! | Ctrl-A s | print statistics |
//! | Ctrl-A v | typed input to the guest's `hvc0` (virtio-console), or back to its UART |
//! | Ctrl-A Ctrl-A | send one Ctrl-A to the guest |
//!
//! At Aerie's prompt the commands are `help`, `stats`, `quit` and `resume` (see
//! [`COMMAND_HELP`]); while the prompt is open the guest keeps running but receives no
//! input.
//!
//! The pieces are usable on their own: [`EscapeDecoder`] splits the byte stream into
//! guest bytes and escape keys, [`ConsoleLine`] edits one line, [`parse_command`]
//! reads a finished line. [`Console`] combines them with the current mode; it is what
//! `boot/` feeds. None of them allocates or panics, whatever the bytes.
//!
//! Text constants use `\n` line ends: Aerie's UART writer sends `\r\n` for them.

use arrayvec::ArrayString;
use core::fmt;

/// The escape byte: Ctrl-A (ASCII SOH).
pub const ESCAPE: u8 = 0x01;
/// Ctrl-C (ASCII ETX): at Aerie's prompt, abandons the line.
const CTRL_C: u8 = 0x03;
/// Backspace (ASCII BS), sent by some terminals for the backspace key.
const BACKSPACE: u8 = 0x08;
/// Delete (ASCII DEL), what most terminals send for the backspace key.
const DELETE: u8 = 0x7f;
/// Carriage return: what a terminal in raw mode sends for Enter.
const CR: u8 = b'\r';
/// Line feed: what a pipe sends for Enter (ignored right after a CR).
const LF: u8 = b'\n';
/// The first printable ASCII character (space).
const FIRST_PRINTABLE: u8 = 0x20;
/// The last printable ASCII character (`~`).
const LAST_PRINTABLE: u8 = 0x7e;

/// How many characters a command line at Aerie's prompt holds.
pub const LINE_CAPACITY: usize = 64;

/// Aerie's prompt, printed when its console opens and after each command.
pub const PROMPT: &str = "aerie> ";

/// The escape keys, printed for Ctrl-A h.
pub const ESCAPE_HELP: &str = "\
Aerie console keys (Ctrl-A, then the key):
  Ctrl-A x       quit: power the machine off
  Ctrl-A h       this help
  Ctrl-A c       Aerie's console (again to return to the guest)
  Ctrl-A s       statistics
  Ctrl-A v       typed input to the guest's hvc0 (virtio-console), or back to its UART
  Ctrl-A Ctrl-A  send Ctrl-A to the guest
";

/// The commands at Aerie's prompt, printed for `help`.
pub const COMMAND_HELP: &str = "\
Aerie console commands:
  help     this help (also: ?)
  stats    exits by reason per vCPU, interrupts injected
  snapshot pause the guest, save it to the snapshot disk, and go on
  snapshot quit  the same, then power off at once (the guest does not run on)
  quit     power the machine off
  resume   return to the guest (also: Ctrl-A c)
";

/// Printed when Aerie's console opens, before the first [`PROMPT`].
pub const CONSOLE_BANNER: &str =
    "\nAerie console: the guest runs on without input; type help, or resume to return.\n";

/// Printed when Aerie's console closes and input goes to the guest again.
pub const RESUMED: &str = "Aerie: back to the guest (Ctrl-A c for Aerie's console)\n";

/// A key that follows Ctrl-A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleKey {
    /// `x`: power the machine off.
    Quit,
    /// `h`: print [`ESCAPE_HELP`].
    Help,
    /// `c`: enter (or leave) Aerie's console.
    Console,
    /// `s`: print statistics.
    Stats,
    /// `v`: send typed input to the guest's other console (virtio-console, `hvc0`),
    /// or back to its UART.
    SwitchInput,
}

impl ConsoleKey {
    /// Every key, in the order of [`ESCAPE_HELP`].
    pub const ALL: [ConsoleKey; 5] = [
        ConsoleKey::Quit,
        ConsoleKey::Help,
        ConsoleKey::Console,
        ConsoleKey::Stats,
        ConsoleKey::SwitchInput,
    ];

    /// The letter typed after Ctrl-A (either case is accepted).
    pub const fn letter(self) -> u8 {
        match self {
            ConsoleKey::Quit => b'x',
            ConsoleKey::Help => b'h',
            ConsoleKey::Console => b'c',
            ConsoleKey::Stats => b's',
            ConsoleKey::SwitchInput => b'v',
        }
    }

    /// The key for the byte typed after Ctrl-A, if it is one.
    pub fn from_byte(byte: u8) -> Option<Self> {
        let letter = byte.to_ascii_lowercase();
        Self::ALL.into_iter().find(|key| key.letter() == letter)
    }
}

/// What one received byte means, according to [`EscapeDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A byte for the guest.
    ToGuest(u8),
    /// Ctrl-A followed by a known key.
    Command(ConsoleKey),
    /// Ctrl-A followed by a key that means nothing: ignore it and print
    /// [`UnknownKey`]'s hint.
    UnknownKey(UnknownKey),
    /// Ctrl-A itself: nothing to do until the next byte.
    Pending,
}

/// A key after Ctrl-A that is not an escape key. Its `Display` is the hint to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownKey(pub u8);

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aerie: Ctrl-A ")?;
        match self.0 {
            key @ FIRST_PRINTABLE..=LAST_PRINTABLE => write!(f, "{}", char::from(key))?,
            // Control characters as the caret notation terminals use: 0x02 is ^B.
            key @ 0..FIRST_PRINTABLE => write!(f, "Ctrl-{}", char::from(key + b'@'))?,
            key => write!(f, "{key:#04x}")?,
        }
        f.write_str(" means nothing; Ctrl-A h lists the keys")
    }
}

/// Splits the received bytes into bytes for the guest and Ctrl-A escapes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EscapeDecoder {
    /// Whether the previous byte was an unpaired Ctrl-A.
    escaped: bool,
}

impl EscapeDecoder {
    /// A decoder that has seen nothing yet.
    pub const fn new() -> Self {
        Self { escaped: false }
    }

    /// Whether a Ctrl-A is waiting for its key.
    pub const fn is_pending(&self) -> bool {
        self.escaped
    }

    /// Decodes the next received byte.
    pub fn input(&mut self, byte: u8) -> Input {
        if !self.escaped {
            if byte == ESCAPE {
                self.escaped = true;
                return Input::Pending;
            }
            return Input::ToGuest(byte);
        }
        self.escaped = false;
        if byte == ESCAPE {
            return Input::ToGuest(ESCAPE);
        }
        match ConsoleKey::from_byte(byte) {
            Some(key) => Input::Command(key),
            None => Input::UnknownKey(UnknownKey(byte)),
        }
    }
}

/// What a byte did to the line at Aerie's prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineInput {
    /// The byte was added: print it.
    Echo(u8),
    /// The last character was removed: print backspace, space, backspace.
    Erase,
    /// Enter: the line is complete ([`ConsoleLine::as_str`]); clear it when done.
    Enter,
    /// Ctrl-C: the line was abandoned and is now empty.
    Cancel,
    /// The line is full and the byte was dropped: ring the bell.
    Full,
    /// The byte means nothing here (a control character, a non-ASCII byte, a
    /// backspace on an empty line, the LF of a CR LF pair).
    Ignored,
}

/// The line being typed at Aerie's prompt: printable ASCII, at most
/// [`LINE_CAPACITY`] characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleLine {
    text: ArrayString<LINE_CAPACITY>,
    /// Whether the previous byte was a CR, so that the LF of a CR LF is not a
    /// second Enter.
    after_cr: bool,
}

impl ConsoleLine {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            text: ArrayString::new_const(),
            after_cr: false,
        }
    }

    /// The text typed so far.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Empties the line.
    pub fn clear(&mut self) {
        self.text.clear();
    }

    /// Applies one typed byte.
    pub fn input(&mut self, byte: u8) -> LineInput {
        let after_cr = core::mem::replace(&mut self.after_cr, byte == CR);
        match byte {
            CR => LineInput::Enter,
            LF if after_cr => LineInput::Ignored,
            LF => LineInput::Enter,
            BACKSPACE | DELETE => match self.text.pop() {
                Some(_) => LineInput::Erase,
                None => LineInput::Ignored,
            },
            CTRL_C => {
                self.text.clear();
                LineInput::Cancel
            }
            FIRST_PRINTABLE..=LAST_PRINTABLE => match self.text.try_push(char::from(byte)) {
                Ok(()) => LineInput::Echo(byte),
                Err(_) => LineInput::Full,
            },
            _ => LineInput::Ignored,
        }
    }
}

/// A command typed at Aerie's prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleCommand {
    /// An empty line: print the prompt again.
    Empty,
    /// `help` or `?`: print [`COMMAND_HELP`].
    Help,
    /// `stats`: print exits by reason per vCPU and the interrupts injected.
    Stats,
    /// `quit`: power the machine off.
    Quit,
    /// `resume`: leave Aerie's console; input goes to the guest again.
    Resume,
    /// `snapshot`: save the running guest to the snapshot disk.
    Snapshot,
    /// `snapshot quit`: save the guest, then power off without letting it run again
    /// (so that it cannot change its disks after the snapshot).
    SnapshotAndQuit,
}

/// The command names, for [`parse_command`].
const COMMANDS: [(&str, ConsoleCommand); 7] = [
    ("help", ConsoleCommand::Help),
    ("?", ConsoleCommand::Help),
    ("stats", ConsoleCommand::Stats),
    ("quit", ConsoleCommand::Quit),
    ("resume", ConsoleCommand::Resume),
    ("snapshot", ConsoleCommand::Snapshot),
    ("snapshot quit", ConsoleCommand::SnapshotAndQuit),
];

/// A line at Aerie's prompt that is not a command. Its `Display` is the message to
/// print. It keeps a copy of the line, so it outlives the [`ConsoleLine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCommand {
    line: ArrayString<LINE_CAPACITY>,
}

impl UnknownCommand {
    /// The line as typed (without surrounding spaces).
    pub fn as_str(&self) -> &str {
        &self.line
    }
}

impl fmt::Display for UnknownCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown command \"{}\"; the commands are help, stats, snapshot, snapshot \
             quit, quit and resume",
            self.line.escape_debug()
        )
    }
}

/// Reads a line typed at Aerie's prompt. Spaces around and between words and letter
/// case do not matter.
pub fn parse_command(line: &str) -> Result<ConsoleCommand, UnknownCommand> {
    let word = line.trim();
    if word.is_empty() {
        return Ok(ConsoleCommand::Empty);
    }
    let same_words = |name: &str| {
        let mut typed = word.split_ascii_whitespace();
        let mut known = name.split_ascii_whitespace();
        loop {
            match (typed.next(), known.next()) {
                (None, None) => return true,
                (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => {}
                _ => return false,
            }
        }
    };
    COMMANDS
        .iter()
        .find(|(name, _)| same_words(name))
        .map(|&(_, command)| command)
        .ok_or_else(|| {
            let mut copy = ArrayString::new();
            // Only lines longer than the console line (not typed there) are cut.
            for c in word.chars() {
                if copy.try_push(c).is_err() {
                    break;
                }
            }
            UnknownCommand { line: copy }
        })
}

/// Where received bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// To the guest (escapes aside).
    #[default]
    Guest,
    /// To Aerie's prompt.
    Prompt,
}

/// What `boot/` does for one received byte. "Print" means on Aerie's console (the
/// physical UART).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing (a Ctrl-A waiting for its key, or an ignored byte at the prompt).
    None,
    /// Deliver the byte to the guest's UART.
    ToGuest(u8),
    /// Print [`ESCAPE_HELP`] (then, in [`Mode::Prompt`], [`PROMPT`] and the line so
    /// far, which is kept).
    EscapeHelp,
    /// Print the key's hint (then, in [`Mode::Prompt`], [`PROMPT`] and the line).
    UnknownKey(UnknownKey),
    /// Aerie's console opened: print [`CONSOLE_BANNER`] and [`PROMPT`].
    Opened,
    /// At the prompt: print the byte.
    Echo(u8),
    /// At the prompt: print backspace, space, backspace.
    Erase,
    /// At the prompt: print the bell (0x07).
    Bell,
    /// At the prompt, Ctrl-C: print `^C`, a new line and [`PROMPT`].
    Cancelled,
    /// Carry out the command, from the prompt (print a new line first) or from an
    /// escape key (Ctrl-A s, Ctrl-A x, Ctrl-A c to close the console). Afterwards:
    /// [`ConsoleCommand::Resume`] prints [`RESUMED`]; [`ConsoleCommand::Help`]
    /// prints [`COMMAND_HELP`]; [`ConsoleCommand::Quit`] powers off; and if
    /// [`Console::mode`] is still [`Mode::Prompt`], print [`PROMPT`].
    Run(ConsoleCommand),
    /// At the prompt, a line that is not a command: print a new line, the message
    /// and [`PROMPT`].
    Unknown(UnknownCommand),
    /// Ctrl-A v: typed bytes go to the guest's other console from now on (and back
    /// on the next Ctrl-A v).
    SwitchInput,
}

/// Aerie's console: the escape decoder, the mode and the prompt's line. `boot/`
/// feeds it every byte received on the physical UART and acts on the [`Action`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Console {
    decoder: EscapeDecoder,
    mode: Mode,
    line: ConsoleLine,
}

impl Console {
    /// A console in [`Mode::Guest`].
    pub const fn new() -> Self {
        Self {
            decoder: EscapeDecoder::new(),
            mode: Mode::Guest,
            line: ConsoleLine::new(),
        }
    }

    /// Where received bytes go now.
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// The line typed at the prompt so far (empty in [`Mode::Guest`]).
    pub fn line(&self) -> &str {
        self.line.as_str()
    }

    /// Handles one received byte.
    pub fn input(&mut self, byte: u8) -> Action {
        match self.decoder.input(byte) {
            Input::Pending => Action::None,
            Input::UnknownKey(key) => Action::UnknownKey(key),
            Input::Command(ConsoleKey::Help) => Action::EscapeHelp,
            Input::Command(ConsoleKey::Stats) => Action::Run(ConsoleCommand::Stats),
            Input::Command(ConsoleKey::SwitchInput) => Action::SwitchInput,
            Input::Command(ConsoleKey::Quit) => Action::Run(ConsoleCommand::Quit),
            Input::Command(ConsoleKey::Console) => match self.mode {
                Mode::Guest => {
                    self.mode = Mode::Prompt;
                    Action::Opened
                }
                Mode::Prompt => self.leave(),
            },
            Input::ToGuest(byte) => match self.mode {
                Mode::Guest => Action::ToGuest(byte),
                Mode::Prompt => self.edit(byte),
            },
        }
    }

    /// Applies a byte to the prompt's line.
    fn edit(&mut self, byte: u8) -> Action {
        match self.line.input(byte) {
            LineInput::Echo(byte) => Action::Echo(byte),
            LineInput::Erase => Action::Erase,
            LineInput::Full => Action::Bell,
            LineInput::Ignored => Action::None,
            LineInput::Cancel => Action::Cancelled,
            LineInput::Enter => {
                let parsed = parse_command(self.line.as_str());
                self.line.clear();
                match parsed {
                    Ok(ConsoleCommand::Resume) => self.leave(),
                    Ok(command) => Action::Run(command),
                    Err(unknown) => Action::Unknown(unknown),
                }
            }
        }
    }

    /// Closes the prompt.
    fn leave(&mut self) -> Action {
        self.mode = Mode::Guest;
        self.line.clear();
        Action::Run(ConsoleCommand::Resume)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    // ASCII control codes, restated: Ctrl-<letter> is the letter's code minus 0x40
    // (ECMA-48 / ASCII, "C0 control set").
    const CTRL_A: u8 = b'A' - 0x40;
    const CTRL_B: u8 = b'B' - 0x40;

    fn decode(bytes: &[u8]) -> Vec<Input> {
        let mut decoder = EscapeDecoder::new();
        bytes.iter().map(|&b| decoder.input(b)).collect()
    }

    #[test]
    fn ctrl_a_is_0x01_as_in_ascii() {
        assert_eq!(ESCAPE, CTRL_A);
        assert_eq!(CTRL_C, b'C' - 0x40);
        assert_eq!(BACKSPACE, b'H' - 0x40);
    }

    #[test]
    fn ordinary_bytes_go_to_the_guest_unchanged() {
        let all: Vec<u8> = (0..=255u8).filter(|&b| b != ESCAPE).collect();
        let decoded = decode(&all);
        for (byte, input) in all.iter().zip(decoded) {
            assert_eq!(input, Input::ToGuest(*byte));
        }
    }

    #[test]
    fn escape_keys_in_either_case() {
        for (key, expected) in [
            (b'x', ConsoleKey::Quit),
            (b'X', ConsoleKey::Quit),
            (b'h', ConsoleKey::Help),
            (b'H', ConsoleKey::Help),
            (b'c', ConsoleKey::Console),
            (b'C', ConsoleKey::Console),
            (b's', ConsoleKey::Stats),
            (b'S', ConsoleKey::Stats),
        ] {
            assert_eq!(
                decode(&[CTRL_A, key]),
                [Input::Pending, Input::Command(expected)]
            );
        }
    }

    #[test]
    fn ctrl_a_twice_sends_one_ctrl_a() {
        assert_eq!(
            decode(&[CTRL_A, CTRL_A, b'x', CTRL_A, CTRL_A, CTRL_A, b'x']),
            [
                Input::Pending,
                Input::ToGuest(CTRL_A),
                // The pair is complete: this x is ordinary.
                Input::ToGuest(b'x'),
                Input::Pending,
                Input::ToGuest(CTRL_A),
                Input::Pending,
                Input::Command(ConsoleKey::Quit),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_swallowed_with_a_hint() {
        let mut decoder = EscapeDecoder::new();
        assert_eq!(decoder.input(CTRL_A), Input::Pending);
        assert!(decoder.is_pending());
        assert_eq!(decoder.input(b'q'), Input::UnknownKey(UnknownKey(b'q')));
        assert!(!decoder.is_pending());
        assert_eq!(decoder.input(b'q'), Input::ToGuest(b'q'));
        assert_eq!(
            UnknownKey(b'q').to_string(),
            "Aerie: Ctrl-A q means nothing; Ctrl-A h lists the keys"
        );
        assert_eq!(
            UnknownKey(CTRL_B).to_string(),
            "Aerie: Ctrl-A Ctrl-B means nothing; Ctrl-A h lists the keys"
        );
        assert_eq!(
            UnknownKey(0xc3).to_string(),
            "Aerie: Ctrl-A 0xc3 means nothing; Ctrl-A h lists the keys"
        );
        assert!(UnknownKey(DELETE).to_string().contains("Ctrl-A 0x7f "));
    }

    #[test]
    fn the_help_text_lists_every_key() {
        for key in ConsoleKey::ALL {
            let entry = std::format!("Ctrl-A {}  ", char::from(key.letter()));
            assert!(ESCAPE_HELP.contains(&entry), "{entry}");
        }
        assert!(ESCAPE_HELP.contains("Ctrl-A Ctrl-A"));
        for (name, _) in COMMANDS {
            assert!(COMMAND_HELP.contains(name), "{name}");
        }
    }

    fn type_line(line: &mut ConsoleLine, bytes: &[u8]) -> Vec<LineInput> {
        bytes.iter().map(|&b| line.input(b)).collect()
    }

    #[test]
    fn a_line_is_echoed_edited_and_entered() {
        let mut line = ConsoleLine::new();
        assert_eq!(
            type_line(&mut line, b"stx"),
            [
                LineInput::Echo(b's'),
                LineInput::Echo(b't'),
                LineInput::Echo(b'x')
            ]
        );
        assert_eq!(line.input(DELETE), LineInput::Erase);
        assert_eq!(line.input(BACKSPACE), LineInput::Erase);
        assert_eq!(line.as_str(), "s");
        assert_eq!(type_line(&mut line, b"tats").len(), 4);
        assert_eq!(line.input(b'\r'), LineInput::Enter);
        assert_eq!(line.as_str(), "stats");
        // The LF of CR LF is not a second Enter; a lone LF is one.
        assert_eq!(line.input(b'\n'), LineInput::Ignored);
        assert_eq!(line.input(b'\n'), LineInput::Enter);
        line.clear();
        assert_eq!(line.as_str(), "");
        assert_eq!(line.input(DELETE), LineInput::Ignored);
    }

    #[test]
    fn control_and_non_ascii_bytes_are_ignored_and_ctrl_c_cancels() {
        let mut line = ConsoleLine::new();
        for byte in [0x00, 0x1b, b'\t', 0x80, 0xff, CTRL_B] {
            assert_eq!(line.input(byte), LineInput::Ignored, "{byte:#x}");
        }
        type_line(&mut line, b"qu");
        assert_eq!(line.input(CTRL_C), LineInput::Cancel);
        assert_eq!(line.as_str(), "");
    }

    #[test]
    fn a_full_line_rings_the_bell() {
        let mut line = ConsoleLine::new();
        for _ in 0..LINE_CAPACITY {
            assert_eq!(line.input(b'a'), LineInput::Echo(b'a'));
        }
        assert_eq!(line.input(b'a'), LineInput::Full);
        assert_eq!(line.as_str().len(), LINE_CAPACITY);
        assert_eq!(line.input(DELETE), LineInput::Erase);
        assert_eq!(line.input(b'b'), LineInput::Echo(b'b'));
    }

    #[test]
    fn commands_are_parsed_ignoring_case_and_spaces() {
        assert_eq!(parse_command("help"), Ok(ConsoleCommand::Help));
        assert_eq!(parse_command("?"), Ok(ConsoleCommand::Help));
        assert_eq!(parse_command("  STATS "), Ok(ConsoleCommand::Stats));
        assert_eq!(parse_command("quit"), Ok(ConsoleCommand::Quit));
        assert_eq!(parse_command("Resume"), Ok(ConsoleCommand::Resume));
        assert_eq!(parse_command("snapshot"), Ok(ConsoleCommand::Snapshot));
        assert_eq!(
            parse_command(" Snapshot   QUIT "),
            Ok(ConsoleCommand::SnapshotAndQuit)
        );
        assert!(parse_command("snapshot quit now").is_err());
        assert!(parse_command("snapshotquit").is_err());
        assert_eq!(parse_command(""), Ok(ConsoleCommand::Empty));
        assert_eq!(parse_command("   "), Ok(ConsoleCommand::Empty));
    }

    #[test]
    fn unknown_commands_are_named() {
        let unknown = parse_command(" reboot now ").unwrap_err();
        assert_eq!(unknown.as_str(), "reboot now");
        assert_eq!(
            unknown.to_string(),
            "unknown command \"reboot now\"; the commands are help, stats, snapshot, \
             snapshot quit, quit and resume"
        );
        // Prefixes and arguments are not commands.
        assert!(parse_command("q").is_err());
        assert!(parse_command("help me").is_err());
        // Control characters are shown escaped; very long lines are cut.
        let shown = parse_command("a\u{1b}[2J").unwrap_err().to_string();
        assert!(shown.contains("\"a\\u{1b}[2J\""), "{shown}");
        let long: String = std::iter::repeat_n('z', 200).collect();
        assert_eq!(
            parse_command(&long).unwrap_err().as_str().len(),
            LINE_CAPACITY
        );
    }

    fn feed(console: &mut Console, bytes: &[u8]) -> Vec<Action> {
        bytes.iter().map(|&b| console.input(b)).collect()
    }

    #[test]
    fn the_console_opens_runs_commands_and_resumes() {
        let mut console = Console::new();
        assert_eq!(console.mode(), Mode::Guest);
        assert_eq!(feed(&mut console, b"ls\r"), {
            [b'l', b's', b'\r'].map(Action::ToGuest)
        });
        assert_eq!(
            feed(&mut console, &[CTRL_A, b'c']),
            [Action::None, Action::Opened]
        );
        assert_eq!(console.mode(), Mode::Prompt);
        assert_eq!(
            feed(&mut console, b"stats\r"),
            [
                Action::Echo(b's'),
                Action::Echo(b't'),
                Action::Echo(b'a'),
                Action::Echo(b't'),
                Action::Echo(b's'),
                Action::Run(ConsoleCommand::Stats),
            ]
        );
        assert_eq!(console.line(), "");
        assert_eq!(
            feed(&mut console, b"\r"),
            [Action::Run(ConsoleCommand::Empty)]
        );
        let actions = feed(&mut console, b"bogus\r");
        let Some(Action::Unknown(unknown)) = actions.last() else {
            panic!("{actions:?}")
        };
        assert_eq!(unknown.as_str(), "bogus");
        assert_eq!(console.mode(), Mode::Prompt);
        let actions = feed(&mut console, b"resume\r");
        assert_eq!(actions.last(), Some(&Action::Run(ConsoleCommand::Resume)));
        assert_eq!(console.mode(), Mode::Guest);
        assert_eq!(console.input(b'y'), Action::ToGuest(b'y'));
    }

    #[test]
    fn ctrl_a_c_toggles_and_drops_the_unfinished_line() {
        let mut console = Console::new();
        feed(&mut console, &[CTRL_A, b'c']);
        feed(&mut console, b"hel");
        assert_eq!(console.line(), "hel");
        assert_eq!(
            feed(&mut console, &[CTRL_A, b'C']),
            [Action::None, Action::Run(ConsoleCommand::Resume)]
        );
        assert_eq!(console.mode(), Mode::Guest);
        assert_eq!(console.line(), "");
        // Back at the prompt the old line is gone.
        feed(&mut console, &[CTRL_A, b'c']);
        assert_eq!(console.line(), "");
    }

    #[test]
    fn escape_keys_work_in_both_modes() {
        for open in [false, true] {
            let mut console = Console::new();
            if open {
                feed(&mut console, &[CTRL_A, b'c']);
                feed(&mut console, b"st");
            }
            assert_eq!(
                feed(&mut console, &[CTRL_A, b'h']),
                [Action::None, Action::EscapeHelp]
            );
            assert_eq!(
                feed(&mut console, &[CTRL_A, b's']),
                [Action::None, Action::Run(ConsoleCommand::Stats)]
            );
            assert_eq!(
                feed(&mut console, &[CTRL_A, b'z']),
                [Action::None, Action::UnknownKey(UnknownKey(b'z'))]
            );
            assert_eq!(
                feed(&mut console, &[CTRL_A, b'x']),
                [Action::None, Action::Run(ConsoleCommand::Quit)]
            );
            // The escapes leave the mode and the line as they were.
            let expected = if open { Mode::Prompt } else { Mode::Guest };
            assert_eq!(console.mode(), expected);
            assert_eq!(console.line(), if open { "st" } else { "" });
        }
    }

    #[test]
    fn at_the_prompt_nothing_reaches_the_guest() {
        let mut console = Console::new();
        feed(&mut console, &[CTRL_A, b'c']);
        for byte in 0..=255u8 {
            if let Action::ToGuest(b) = console.input(byte) {
                panic!("{b:#x} reached the guest");
            }
        }
        // A Ctrl-A pair at the prompt is an ignored control character.
        let mut console = Console::new();
        feed(&mut console, &[CTRL_A, b'c']);
        assert_eq!(feed(&mut console, &[CTRL_A, CTRL_A]), [Action::None; 2]);
        assert_eq!(console.input(CTRL_C), Action::Cancelled);
        for _ in 0..LINE_CAPACITY {
            console.input(b'a');
        }
        assert_eq!(console.input(b'a'), Action::Bell);
        assert_eq!(console.input(DELETE), Action::Erase);
    }

    #[test]
    fn arbitrary_input_never_panics_and_always_decodes() {
        // A simple deterministic byte sequence covering every value in many orders.
        let mut console = Console::new();
        let mut state = 0x2545_f491u32;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let _ = console.input(state.to_le_bytes()[0]);
            assert!(console.line().len() <= LINE_CAPACITY);
        }
    }

    #[test]
    fn ctrl_a_v_switches_the_input_console() {
        let mut console = Console::new();
        assert_eq!(console.input(ESCAPE), Action::None);
        assert_eq!(console.input(b'v'), Action::SwitchInput);
        assert_eq!(console.input(b'a'), Action::ToGuest(b'a'));
    }
}
