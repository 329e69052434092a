//! The `wxplugin-bot` binary: everything lives in the library so tests build the same app.

fn main() -> std::process::ExitCode {
    wxplugin_bot::cli::run()
}
