//! Standard output for every command: [`outln!`](crate::outln), a `println!` that ends
//! the process quietly when the reader has gone (`switchyard dlq list | head`), instead
//! of panicking on the broken pipe as `println!` does.
//!
//! Stopping there is safe for every command: a replay or purge deletes a dead letter
//! only after its re-queue is acknowledged, so one cut short is run again, as after
//! Ctrl-C.

use std::io::{ErrorKind, Write};

/// Write one line to standard output. When the reader has closed the pipe, exit at once
/// with status 0 and say nothing (as `head` expects); any other write error ends the
/// process with status 1 and one line on standard error.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}") {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` for the CLI: see [`line`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdout::line(format_args!($($arg)*))
    };
}
