//! The `optscrub` binary: parse the command line, run the library, map the
//! result to an exit status (0 success, 1 bad input or usage, 2 store
//! locked, corrupt or inconsistent).

use clap::Parser;

fn main() {
    optscrub::error::install_panic_hook();
    let cli = match optscrub::cmd::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    match optscrub::cmd::run(cli) {
        Ok(0) => {}
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("optscrub: error: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
