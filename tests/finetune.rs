//! Full fine-tuning of the sentence encoder: the trainable network is the served encoder,
//! training lowers the loss, and what it writes serves through ONNX Runtime.

mod common;

use candle_core::{Device, Tensor};
use shelf::dense::bert::TrainableBert;
use shelf::dense::Encoder;
use shelf::engine::Engine;
use shelf::eval::split::Part;
use shelf::train::encoder::{AdapterParams, EncoderTrainOptions};
use shelf::train::finetune::{finetune, FinetuneParams, Stop};

fn vectors(encoder: &Encoder, bert: &TrainableBert, texts: &[&str]) -> Vec<Vec<f32>> {
    let tokens = encoder.tokens(texts).unwrap();
    let shape = (texts.len(), tokens.width);
    let ids = Tensor::from_vec(tokens.ids, shape, &Device::Cpu).unwrap();
    let mask = Tensor::from_vec(tokens.mask, shape, &Device::Cpu).unwrap();
    bert.forward(&ids, &mask).unwrap().to_vec2::<f32>().unwrap()
}

#[test]
fn the_trainable_network_is_the_served_encoder() {
    let encoder = Encoder::load(&common::encoder_dir()).unwrap();
    let bert = TrainableBert::load(&common::encoder_dir()).unwrap();
    let long = "vanity ".repeat(300);
    // Short and long texts in one padded batch: the mask must keep padding out.
    let texts = ["deck over", "Glacier Bay 36 in. Vanity in Grey with Marble Top", "x", long.as_str()];
    let reference = encoder.embed(&texts).unwrap();
    for (text, (ours, theirs)) in texts.iter().zip(vectors(&encoder, &bert, &texts).iter().zip(&reference)) {
        let cosine: f32 = ours.iter().zip(theirs).map(|(a, b)| a * b).sum();
        assert!(cosine > 0.9999, "{cosine} for {:.40}", text);
    }
}

#[test]
fn fine_tuning_keeps_its_best_epoch_and_its_export_serves() {
    let engine = Engine::open_with_encoder(common::demo_index(), &common::encoder_dir()).unwrap();
    let (queries, qrels) = common::demo_judgments();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo-finetuned");
    let options = EncoderTrainOptions { params: AdapterParams::default(), seed: 3, show_progress: false };
    // A few queries and a high learning rate: the held-out loss falls, then the network
    // overfits within a few epochs. The budget only guards against a hung run.
    let few: Vec<(String, String)> = Part::Tune.select(&queries).into_iter().take(30).collect();
    let params = FinetuneParams {
        epochs: 6,
        patience: 1,
        max_minutes: 10.0,
        learning_rate: 5e-4,
        batch: 16,
        ..FinetuneParams::default()
    };
    let report = finetune(&engine, &common::encoder_dir(), &few, &qrels, &options, &params, &out).unwrap();
    let losses = &report.holdout_losses;
    eprintln!("held-out loss {:.4}, then per epoch {losses:?}", report.holdout_loss_before);
    // It stopped one epoch (the patience) after the lowest held-out loss, before its last
    // epoch, and wrote that epoch's weights: measured again after they were put back.
    let lowest = losses.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(losses[report.best_epoch - 1], lowest, "{report:?}");
    assert_eq!(losses.len(), report.best_epoch + 1, "{report:?}");
    assert!(losses.len() < params.epochs, "no early stop: {report:?}");
    assert_eq!(report.stopped_by, Some(Stop::Patience));
    assert!((report.holdout_loss_after - lowest).abs() < 1e-5, "{report:?}");
    assert!(report.holdout_loss_after < report.holdout_loss_before, "{report:?}");
    assert!(report.steps >= 5, "{report:?}");
    assert!(report.export_cosine >= 0.999, "{report:?}");
    assert_ne!(report.weights_sha256, report.base_weights_sha256);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["kind"], "fine-tuned");
    assert_eq!(meta["onnx_sha256"], shelf::dense::model::sha256_file(&out.join("model.onnx")).unwrap());
    // It serves, and an index embedded by the stock encoder refuses it: its products moved too.
    let tuned = Encoder::load(&out).unwrap();
    assert_eq!(tuned.embed_query("grey sofa").unwrap().len(), 384);
    let error = Engine::open_with_encoder(common::demo_index(), &out).err().expect("refused").to_string();
    assert!(error.contains("not the one that made the index's vectors"), "{error}");
}

#[test]
fn settings_that_cannot_train_are_refused_and_nothing_is_written() {
    let engine = Engine::open_with_encoder(common::demo_index(), &common::encoder_dir()).unwrap();
    let (queries, qrels) = common::demo_judgments();
    let few: Vec<(String, String)> = Part::Tune.select(&queries).into_iter().take(30).collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo-finetuned");
    let options = EncoderTrainOptions { params: AdapterParams::default(), seed: 3, show_progress: false };
    let refused = |params: FinetuneParams, options: &EncoderTrainOptions| {
        finetune(&engine, &common::encoder_dir(), &few, &qrels, options, &params, &out)
            .expect_err("refused")
            .to_string()
    };
    for (params, names) in [
        (FinetuneParams { epochs: 0, ..FinetuneParams::default() }, "epochs = 0"),
        (FinetuneParams { patience: 0, ..FinetuneParams::default() }, "patience = 0"),
        (FinetuneParams { max_minutes: -1.0, ..FinetuneParams::default() }, "max_minutes = -1"),
    ] {
        let error = refused(params, &options);
        assert!(error.contains(names), "{error}");
    }
    let no_holdout =
        EncoderTrainOptions { params: AdapterParams { holdout: 0.0, ..AdapterParams::default() }, ..options.clone() };
    assert!(refused(FinetuneParams::default(), &no_holdout).contains("holdout = 0"));
    // A budget gone before the first step trains nothing, and says so.
    let error = refused(FinetuneParams { max_minutes: 1e-9, ..FinetuneParams::default() }, &options);
    assert!(error.contains("before the first step"), "{error}");
    assert!(!out.exists());
}
