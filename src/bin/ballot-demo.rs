//! `ballot-demo`: the whole system on loopback, in a temporary folder, with
//! no prompts. Exits 0 only if every expected outcome happened.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let dir = match tempfile::Builder::new().prefix("ballot-demo-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temporary folder: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("Ballot return demo, in {}\n", dir.path().display());
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(ballot_return_e2e::demo::run_demo(dir.path(), &mut |line| {
        println!("{line}")
    }));
    match result {
        Ok(outcome) => {
            println!("\nThe canvass report:\n\n{}", outcome.report);
            println!("Every expected outcome happened. (The demo's folder is removed on exit.)");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nTHE DEMO FAILED: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  because: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
