use std::process::ExitCode;

use clap::Parser;

use cpstat::cli::Cli;
use cpstat::error::exit_kind_of;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cpstat::logging::init(cli.verbose);
    let mut builder = if cpstat::commands::wants_one_thread(&cli) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cpstat::commands::run(cli)) {
        Ok(kind) => ExitCode::from(kind.code() as u8),
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(exit_kind_of(&error).code() as u8)
        }
    }
}
