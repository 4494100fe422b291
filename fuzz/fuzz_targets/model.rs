//! `cargo fuzz run model`: see `pbc_compiler::fuzzing::model` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pbc_compiler::fuzzing::model(data);
});
