//! Log output on stderr through `tracing`, and progress bars.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the log subscriber: warnings by default, `-v` info, `-vv` debug,
/// `-vvv` trace, for cpstat's own modules. `RUST_LOG` replaces the filter.
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,cpstat={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbosity >= 2)
        .try_init();
}

/// A progress bar of pages and users on stderr, shown only when stderr is a
/// terminal and output is not quiet.
pub struct FetchProgress {
    bar: ProgressBar,
}

impl FetchProgress {
    pub fn new(quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg} [{bar:30}] {pos}/{len} users ({per_sec})",
                )
                .expect("the progress template is valid")
                .progress_chars("=> "),
            );
            bar
        };
        FetchProgress { bar }
    }

    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl crate::api::fetch::Progress for FetchProgress {
    fn planned(&self, users: u64, pages: u64) {
        self.bar.set_length(users);
        self.bar.set_position(0);
        self.bar.set_message(format!("{pages} pages"));
    }

    fn page_done(&self, users: u64) {
        self.bar.inc(users);
    }
}
