//! The `dj` command. Everything lives in the [`dj_cli`] library; see its documentation.

fn main() -> std::process::ExitCode {
    dj_cli::main()
}
