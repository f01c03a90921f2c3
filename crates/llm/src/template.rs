//! The chat template: the GGUF's own `tokenizer.chat_template` (Jinja), rendered with
//! minijinja and Python-style string methods, as the model was trained to see conversations.
//!
//! A file without a template gets the format of its family: Gemma's turns for `gemma3`, ChatML
//! otherwise (what llama.cpp falls back to as well).

use std::path::{Path, PathBuf};

use docent_core::ChatMessage;
use minijinja::{Environment, Error, ErrorKind, context};

use crate::error::{LlmError, Result};
use crate::gguf::Architecture;

const TEMPLATE: &str = "chat";

/// ChatML, the common format of instruction-tuned models without their own template.
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Gemma's turns: no system role (its text opens the first user turn), `model` for the
/// assistant.
const GEMMA: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}{% else %}{% set first = '' %}{% set loop_messages = messages %}{% endif %}{% for message in loop_messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}{{ '<start_of_turn>' + role + '\n' + (first if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

/// A chat template ready to render.
pub struct ChatTemplate {
    env: Environment<'static>,
    path: PathBuf,
    bos: String,
    eos: String,
    /// Whether the text comes from the file (false: a family default).
    pub from_file: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("from_file", &self.from_file)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// `source`: the file's template, if it has one.
    pub fn new(
        path: &Path,
        source: Option<String>,
        arch: Architecture,
        bos: String,
        eos: String,
    ) -> Result<Self> {
        let from_file = source.is_some();
        let text = source.unwrap_or_else(|| match arch {
            Architecture::Gemma3 => GEMMA.to_string(),
            _ => CHATML.to_string(),
        });
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_function("strftime_now", |fmt: String| -> String {
            // Templates use it to print today's date; docent has no clock-dependent prompts, so
            // only the common formats are filled (from the system clock).
            strftime_now(&fmt)
        });
        env.add_template_owned(TEMPLATE, text)
            .map_err(|e| LlmError::Template {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(ChatTemplate {
            env,
            path: path.to_path_buf(),
            bos,
            eos,
            from_file,
        })
    }

    /// The prompt text for `messages`, ending where the assistant's answer begins.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        let msgs: Vec<_> = messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let tmpl = self.env.get_template(TEMPLATE).map_err(|e| self.err(e))?;
        tmpl.render(context! {
            messages => msgs,
            add_generation_prompt => true,
            bos_token => self.bos.as_str(),
            eos_token => self.eos.as_str(),
        })
        .map_err(|e| self.err(e))
    }

    fn err(&self, e: Error) -> LlmError {
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        LlmError::Template {
            path: self.path.clone(),
            message,
        }
    }
}

fn strftime_now(fmt: &str) -> String {
    let (y, m, d) = docent_core::date::today_utc();
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    fmt.replace("%Y", &y.to_string())
        .replace("%m", &format!("{m:02}"))
        .replace("%d", &format!("{d:02}"))
        .replace("%B", MONTHS[(m - 1) as usize])
        .replace("%b", &MONTHS[(m - 1) as usize][..3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs() -> Vec<ChatMessage> {
        vec![
            ChatMessage::system("Be brief."),
            ChatMessage::user("Hi?"),
            ChatMessage::assistant("Hello."),
            ChatMessage::user("Bye?"),
        ]
    }

    #[test]
    fn chatml_fallback() {
        let t = ChatTemplate::new(
            Path::new("m.gguf"),
            None,
            Architecture::Qwen2,
            "<s>".into(),
            "</s>".into(),
        )
        .unwrap();
        assert_eq!(
            t.render(&msgs()).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn gemma_fallback_folds_the_system_turn_into_the_first_user_turn() {
        let t = ChatTemplate::new(
            Path::new("m.gguf"),
            None,
            Architecture::Gemma3,
            "<bos>".into(),
            "<eos>".into(),
        )
        .unwrap();
        assert_eq!(
            t.render(&msgs()).unwrap(),
            "<bos><start_of_turn>user\nBe brief.\n\nHi?<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nBye?<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn python_string_methods_and_raise_exception_work() {
        let src = "{% if messages[0]['role'] == 'bad' %}{{ raise_exception('no bad roles') }}{% endif %}{{ messages[0]['content'].strip().upper() }}{{ 'x'.startswith('x') }}";
        let t = ChatTemplate::new(
            Path::new("m.gguf"),
            Some(src.into()),
            Architecture::Llama,
            String::new(),
            String::new(),
        )
        .unwrap();
        assert_eq!(t.render(&[ChatMessage::user("  hi  ")]).unwrap(), "HITrue");
        let bad = ChatTemplate::new(
            Path::new("m.gguf"),
            Some("{{ raise_exception('only user and assistant roles') }}".into()),
            Architecture::Llama,
            String::new(),
            String::new(),
        )
        .unwrap();
        let e = bad
            .render(&[ChatMessage::user("x")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.gguf") && e.contains("only user and assistant"),
            "{e}"
        );
    }

    #[test]
    fn a_broken_template_names_the_file() {
        let e = ChatTemplate::new(
            Path::new("broken.gguf"),
            Some("{% for x in %}".into()),
            Architecture::Llama,
            String::new(),
            String::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("broken.gguf"), "{e}");
    }
}
