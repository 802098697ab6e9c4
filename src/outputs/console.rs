//! Test-only: run a program that prints a serial console (QEMU), watch its
//! output for a marker, then kill it. Used by the start_vm.sh and U-Boot
//! smoke tests. The child is killed by its own pid when the [`Console`] is
//! dropped, so a failing assertion never leaves QEMU running.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) struct Console {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Console {
    /// Start `cmd` with stdin from /dev/null, stdout and stderr captured.
    pub(crate) fn spawn(mut cmd: Command) -> Console {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        let pipes: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for mut pipe in pipes {
            let output = Arc::clone(&output);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Console { child, output }
    }

    /// Everything printed so far, ANSI escapes and carriage returns removed.
    pub(crate) fn text(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&self.output.lock().unwrap()))
    }

    /// Wait until the output contains one of `markers` (returns it), the
    /// program exits, or `timeout` passes (`None`).
    pub(crate) fn wait_for(&mut self, markers: &[&str], timeout: Duration) -> Option<String> {
        let start = Instant::now();
        loop {
            let text = self.text();
            if let Some(found) = markers.iter().find(|m| text.contains(*m)) {
                return Some(found.to_string());
            }
            let exited = self.child.try_wait().ok().flatten().is_some();
            if exited || start.elapsed() > timeout {
                // Let the reader threads drain what is left.
                thread::sleep(Duration::from_millis(200));
                let text = self.text();
                return markers
                    .iter()
                    .find(|m| text.contains(*m))
                    .map(|m| m.to_string());
            }
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// Whether the program is still running.
    pub(crate) fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Remove ANSI escape sequences (CSI `ESC [ … final`, and two-byte
/// `ESC x`) and carriage returns.
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI runs to its final byte; other escapes are two bytes.
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// A TCP port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[cfg(test)]
mod tests {
    use super::strip_ansi;

    #[test]
    fn strips_csi_and_cr() {
        assert_eq!(
            strip_ansi("\x1b[2J\x1b[01;01H\x1b[=3hBdsDxe: x\r\n\x1b7ok"),
            "BdsDxe: x\nok"
        );
    }
}
