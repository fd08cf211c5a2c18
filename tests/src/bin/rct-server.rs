fn main() -> std::process::ExitCode {
    rollcall_server::main_entry::main()
}
