//! Manual pages and shell completions generated from a program's clap
//! definition, for the packages: `<program> generate-docs --out DIR` (a
//! hidden command) writes `DIR/man/*.1` (one page for the program and one
//! per command) and `DIR/completions/` for bash, zsh and fish.

use std::path::{Path, PathBuf};

/// Writes the manual pages and completions of the program `name` (as it is
/// installed, e.g. `ballot-return`), whose definition is `cmd`, under `out`;
/// returns the files written.
pub fn write(cmd: clap::Command, name: &'static str, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    // No pages for the `help` command; the hidden command that writes
    // these is left out of them.
    let mut cmd = cmd.name(name).bin_name(name).disable_help_subcommand(true);
    cmd.build();
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut written = Vec::new();
    clap_mangen::generate_to(cmd.clone(), &man)?;
    for e in std::fs::read_dir(&man)? {
        written.push(e?.path());
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        written.push(clap_complete::generate_to(
            shell,
            &mut cmd,
            name,
            &completions,
        )?);
    }
    written.sort();
    Ok(written)
}
