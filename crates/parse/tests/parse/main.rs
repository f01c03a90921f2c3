//! Integration tests of docent-parse over the fixtures: one module per format.

mod email;
mod notes;
mod ocr;
mod pdf;
mod worker;
