fn main() -> std::process::ExitCode {
    rollcall_agent::main_entry::main()
}
