fn main() -> std::process::ExitCode {
    citusctl::main_entry()
}
