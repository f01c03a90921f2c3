//! # docent-embed
//!
//! The embedding model's side of docent. For now: [`HfTokenCounter`], the model's own
//! `tokenizer.json` used to measure chunks in the tokens the model will see.
//! (Implementation in progress.)
