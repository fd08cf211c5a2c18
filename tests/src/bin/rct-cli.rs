fn main() -> std::process::ExitCode {
    rollcall_server::cli::main()
}
