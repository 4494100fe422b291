//! `cargo fuzz run expr`: see `pbc_compiler::fuzzing::expr` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pbc_compiler::fuzzing::expr(data);
});
