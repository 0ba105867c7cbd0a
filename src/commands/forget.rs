//! `cpstat forget`: one person's data out of every snapshot in the store.

use anyhow::Result;

use crate::cli::ForgetArgs;
use crate::config::ConfigFile;
use crate::error::{ExitKind, usage};
use crate::settings::resolve_store;
use crate::snapshot::Store;
use crate::snapshot::forget::forget_email;

pub fn run(args: &ForgetArgs, config: &ConfigFile, quiet: bool) -> Result<ExitKind> {
    let email = args.email.trim();
    if !email.contains('@') {
        return Err(usage(format!(
            "invalid --email {email:?}: expected an e-mail address such as anna.hansen@example.dk"
        )));
    }
    let store_dir = resolve_store(&args.store, config);
    if !store_dir.is_dir() {
        return Err(usage(format!(
            "the store {} does not exist; pass --store",
            store_dir.display()
        )));
    }
    let _lock = super::fetch::lock_store(&store_dir, "forget", args.lock.timeout())?;
    let changed = forget_email(&Store::new(&store_dir), email)?;
    if !quiet {
        for file in &changed {
            println!(
                "{}: removed {} rows, cleared the manager of {} rows",
                file.path.display(),
                file.rows_removed,
                file.manager_fields_cleared
            );
        }
        println!(
            "{} snapshot files changed. Report sets made before now still hold the person's rows: \
             delete them and run `cpstat analyze`",
            changed.len()
        );
    }
    Ok(ExitKind::Success)
}
