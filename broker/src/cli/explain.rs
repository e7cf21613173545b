//! `occ explain [--json] -- SUDO-ARGS…`: what `sudo SUDO-ARGS…` would do and why. It loads the
//! policy files as the broker would, runs the same evaluation, and executes nothing.
//! Exit 0 unless the decision is deny (1); a broken policy file is a deny; 2 is only for
//! explain's own usage errors.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use occ_policy::{explain, Caller, Context};

/// Arguments of `occ explain`.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// The words you would give sudo (put `--` first so occ does not read them).
    #[arg(trailing_var_arg = true, value_name = "SUDO-ARGS")]
    pub args: Vec<String>,
}

/// Runs `occ explain`.
pub fn run(args: ExplainArgs) -> i32 {
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("occ explain: cannot read the current directory: {e}");
            return 2;
        }
    };
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let caller = Caller::from_uid(nix::unistd::getuid().as_raw());
    // As the shim would report it: `... | occ explain -- tee F` shows stdin_from_requester.
    let ctx = Context::new(caller, cwd, env).with_stdin_tty(std::io::stdin().is_terminal());
    let reader = nix::unistd::geteuid().as_raw();
    let policy = occ_policy::load(&crate::paths::security_dir(), reader, &|k| ctx.var(k));
    let ev = occ_policy::evaluate(&args.args, &ctx, &policy);
    if args.json {
        println!("{}", explain::to_json(&ev));
    } else {
        print!("{}", explain::to_text(&ev, &args.args));
    }
    ev.exit_code()
}
