//! Start at login: a systemd user unit (Linux) or a launchd agent (macOS). Written on request
//! only; enabling it is left to the user, with the exact commands printed.

use std::path::{Path, PathBuf};

/// A service file to write, and how to turn it on and off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceFile {
    pub path: PathBuf,
    pub contents: String,
    pub enable: Vec<String>,
    pub remove: Vec<String>,
}

/// The systemd user unit that runs `exe watch` for `data_dir`.
pub fn systemd_unit(home: &Path, exe: &Path, data_dir: &Path) -> ServiceFile {
    let path = home.join(".config/systemd/user/docent.service");
    let contents = format!(
        "[Unit]\n\
         Description=docent: keeps your document index current\n\n\
         [Service]\n\
         Type=simple\n\
         ExecStart={} --data-dir {} watch\n\
         Restart=on-failure\n\
         RestartSec=10\n\
         Nice=10\n\
         IOSchedulingClass=idle\n\n\
         [Install]\n\
         WantedBy=default.target\n",
        quote_systemd(exe),
        quote_systemd(data_dir),
    );
    ServiceFile {
        enable: vec![
            "systemctl --user daemon-reload".into(),
            "systemctl --user enable --now docent.service".into(),
        ],
        remove: vec![
            "systemctl --user disable --now docent.service".into(),
            format!("rm {}", path.display()),
        ],
        path,
        contents,
    }
}

/// The launchd agent that runs `exe watch` for `data_dir` at login.
pub fn launchd_agent(home: &Path, exe: &Path, data_dir: &Path, log: &Path) -> ServiceFile {
    let path = home.join("Library/LaunchAgents/org.docent.watch.plist");
    let esc = |p: &Path| xml_escape(&p.display().to_string());
    let contents = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>org.docent.watch</string>
  <key>ProgramArguments</key>
  <array>
    <string>{}</string>
    <string>--data-dir</string>
    <string>{}</string>
    <string>watch</string>
  </array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
  <key>ProcessType</key><string>Background</string>
  <key>LowPriorityIO</key><true/>
  <key>Nice</key><integer>10</integer>
  <key>StandardOutPath</key><string>{}</string>
  <key>StandardErrorPath</key><string>{}</string>
</dict>
</plist>
"#,
        esc(exe),
        esc(data_dir),
        esc(log),
        esc(log),
    );
    let p = path.display().to_string();
    ServiceFile {
        enable: vec![format!("launchctl load -w {p}")],
        remove: vec![format!("launchctl unload -w {p}"), format!("rm {p}")],
        path,
        contents,
    }
}

fn quote_systemd(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_files_name_the_binary_and_data_dir_safely() {
        let home = Path::new("/home/ann");
        let u = systemd_unit(
            home,
            Path::new("/usr/local/bin/docent"),
            Path::new("/home/ann/My Docs/.docent"),
        );
        assert_eq!(
            u.path,
            PathBuf::from("/home/ann/.config/systemd/user/docent.service")
        );
        assert!(u.contents.contains(
            "ExecStart=/usr/local/bin/docent --data-dir \"/home/ann/My Docs/.docent\" watch"
        ));
        assert!(u.enable.iter().any(|c| c.contains("enable --now")));
        let a = launchd_agent(
            Path::new("/Users/ann"),
            Path::new("/opt/docent"),
            Path::new("/Users/ann/A&B"),
            Path::new("/Users/ann/A&B/daemon/daemon.log"),
        );
        assert!(a.contents.contains("<string>/Users/ann/A&amp;B</string>"));
        assert!(
            a.path
                .ends_with("Library/LaunchAgents/org.docent.watch.plist")
        );
    }
}
