//! `splitdns import-dnsmasq`: a dnsmasq.conf (with its conf-file, conf-dir and
//! servers-file includes) -> the equivalent splitdns TOML.
//!
//! Rule-shaped lines go through the same grammar as `rules` ([`Rule::parse`](crate::config::dnsmasq::Rule::parse)),
//! so whatever is emitted there is what `check` accepts. dnsmasq's implicit
//! defaults are written out (hosts read from /etc/hosts, cache-size 150,
//! dns-forward-max 150, every interface on port 53), since splitdns's own
//! defaults differ; without `user=` the output runs as the `splitdns` user if
//! this host has it, else as dnsmasq's `nobody`, so it starts where it was
//! imported. Every option that cannot be carried over is a warning
//! `FILE:LINE: OPTION: ignored (why)`; options splitdns does not need become a
//! note in the output. Rule lines come out as they were written, in dnsmasq's
//! reading order, so repeated lines for one zone keep dnsmasq's meaning.
//!
//! With `--split DIR`, the rule lines of each conf-dir file go to a fragment
//! of their own in DIR ([`split`]) and the main config includes DIR.
//!
//! `read.rs` reads the dnsmasq config and its includes into option lines,
//! `translate.rs` is the translation table (every dnsmasq option the importer
//! knows, with what it becomes or why it is refused), `render.rs` writes the
//! TOML and `split.rs` the fragments; `user.rs` says whom the output runs as without
//! `user=` and `error.rs` why an import stops, below the files that use them.

mod error;
mod read;
mod render;
mod split;
mod translate;
mod user;

use std::path::Path;

pub use error::ImportError;
use read::Reader;
use translate::Translation;
pub use user::default_user;

/// The TOML and what could not be carried over.
#[derive(Debug)]
pub struct Import {
    pub toml: String,
    /// `FILE:LINE: OPTION: ignored (why)`, in file order.
    pub warnings: Vec<String>,
}

/// Reads `path` (and `conf_dir` as if a `conf-dir=` line ended it) and translates
/// it. With `split`, each conf-dir file's rule lines are written to a fragment in
/// that directory (nothing is written if any of them cannot be), and the TOML
/// includes the directory. `default_user` is what the output runs as without `user=`
/// (see [`default_user`]).
pub fn import(
    path: &Path,
    conf_dir: Option<&Path>,
    split: Option<&Path>,
    default_user: &'static str,
) -> Result<Import, ImportError> {
    let mut reader = Reader::new(split.is_some());
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.display().to_string(),
        source,
    })?;
    reader.text(path, &text, 0);
    if let Some(dir) = conf_dir {
        reader.conf_dir(
            &format!("--conf-dir {}", dir.display()),
            &dir.display().to_string(),
            0,
        );
    }
    let mut out = Translation::new(&reader.lines, default_user);
    for line in &reader.lines {
        out.line(line);
    }
    let mut warnings = reader.warnings;
    warnings.extend(out.warnings.iter().cloned());
    let Some(dir) = split else {
        return Ok(Import {
            toml: render::main_config(&out, path, None),
            warnings,
        });
    };
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let fragments = split::fragments(&out, &reader.sources, &dir)?;
    warnings.extend(split::order_warnings(&out, &fragments, &dir));
    warnings.extend(split::write(&dir, &fragments)?);
    Ok(Import {
        toml: render::main_config(&out, path, Some(&dir)),
        warnings,
    })
}

#[cfg(test)]
mod tests;
