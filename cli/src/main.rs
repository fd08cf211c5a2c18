fn main() -> std::process::ExitCode {
    rollcall_cli::main()
}
