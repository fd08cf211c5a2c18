//! `rollcall-sim`: the fleet simulator (see `rollcall_agent::sim`).

fn main() -> std::process::ExitCode {
    rollcall_agent::sim::main()
}
