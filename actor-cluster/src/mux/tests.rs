//! The lanes' unit tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u64).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn frame_counter_counts_frames_split_anywhere() {
    let mut stream = Vec::new();
    for i in 0..50usize {
        stream.extend(frame(&vec![7u8; i * 13 % 300]));
    }
    for piece in [1usize, 2, 3, 7, 8, 9, 64, 1000, stream.len()] {
        let mut c = FrameCounter::default();
        let n: u64 = stream.chunks(piece).map(|p| c.feed(p)).sum();
        assert_eq!(n, 50, "pieces of {piece}");
    }
}

#[test]
fn chunk_headers_round_trip_and_refuse_bad_ones() {
    assert_eq!(
        decode_chunk_header(chunk_header(KIND_CONTROL, 300)),
        Ok((KIND_CONTROL, 300))
    );
    assert_eq!(
        decode_chunk_header([9, 0, 0, 0, 1]),
        Err(ChunkError::Kind(9))
    );
    assert_eq!(
        decode_chunk_header(chunk_header(KIND_DATA, MAX_CHUNK + 1)),
        Err(ChunkError::TooLong(MAX_CHUNK + 1))
    );
}

#[tokio::test]
async fn queued_control_is_written_before_queued_data() {
    let (a, _b) = tokio::io::duplex(64);
    let (r, w) = tokio::io::split(a);
    let (lane, _r, _w) = start(
        "p".into(),
        r,
        w,
        Arc::new(|_: &Lane, _| {}),
        Arc::new(|| {}),
    );
    let (ctl_tx, ctl_rx) = mpsc::channel(4);
    let (out_tx, out_rx) = mpsc::channel(4);
    let data = Bytes::from(frame(&[1, 2, 3]));
    for _ in 0..3 {
        out_tx.send(data.clone()).await.unwrap();
    }
    ctl_tx.send(Bytes::from_static(b"hb")).await.unwrap();
    drop(out_tx);
    let mut out = Vec::new();
    write_loop(&mut out, ctl_rx, out_rx, &lane, &Flow::default())
        .await
        .unwrap();
    // The control chunk, queued last, is written first; then the data in order.
    let head = |at: usize| decode_chunk_header(out[at..at + 5].try_into().unwrap()).unwrap();
    assert_eq!(head(0), (KIND_CONTROL, 2));
    assert_eq!(&out[5..7], b"hb");
    let mut at = 7;
    for _ in 0..3 {
        assert_eq!(head(at), (KIND_DATA, data.len()));
        assert_eq!(&out[at + 5..at + 5 + data.len()], &data[..]);
        at += 5 + data.len();
    }
    assert_eq!(at, out.len());
    assert_eq!(lane.outbound.frames_out(), 3);
}

#[tokio::test]
async fn control_and_data_share_a_connection_and_arrive_intact() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let got = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let g = got.clone();
    let handler: ControlHandler = Arc::new(move |_, c| g.lock().push(c));
    let noop: Arc<dyn Fn() + Send + Sync> = Arc::new(|| {});
    let (la, _ra, mut wa) = start("b".into(), ar, aw, handler.clone(), noop.clone());
    let (lb, mut rb, _wb) = start("a".into(), br, bw, handler, noop);
    lb.set_ready();
    la.set_ready();
    let mut data = Vec::new();
    for i in 0..2000u32 {
        data.extend(frame(&i.to_be_bytes()));
    }
    let writer = tokio::spawn(async move {
        wa.write_all(&data).await.unwrap();
        wa.flush().await.unwrap();
        wa
    });
    let hb = Control::Probe {
        probe: actor_cluster_proto::membership::Probe::Ping { seq: 1, members: 2 },
        services: vec![(3, 4)],
        wall_ns: 5,
    };
    assert!(la.send_control(Bytes::from(encode_control(&hb).unwrap())));
    let mut back = vec![0u8; 2000 * 12];
    rb.read_exact(&mut back).await.unwrap();
    let _wa = writer.await.unwrap();
    let mut c = FrameCounter::default();
    assert_eq!(c.feed(&back), 2000);
    assert_eq!(&back[8..12], &0u32.to_be_bytes());
    assert_eq!(&back[back.len() - 4..], &1999u32.to_be_bytes());
    assert_eq!(got.lock().as_slice(), &[hb]);
    assert_eq!(la.outbound.frames_out(), 2000);
}

/// Reads one chunk: its kind and body.
async fn chunk<R: AsyncRead + Unpin>(r: &mut R) -> (u8, Vec<u8>) {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).await.unwrap();
    let (kind, len) = decode_chunk_header(head).unwrap();
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.unwrap();
    (kind, body)
}

#[tokio::test]
async fn data_stops_at_the_window_until_credit_arrives_and_control_still_passes() {
    let (a, mut b) = tokio::io::duplex(DATA_CHUNK);
    let (_r, w) = tokio::io::split(a);
    let (lane, _r2, _w2) = start(
        "p".into(),
        tokio::io::empty(),
        tokio::io::sink(),
        Arc::new(|_: &Lane, _| {}),
        Arc::new(|| {}),
    );
    let (ctl_tx, ctl_rx) = mpsc::channel(4);
    let (out_tx, out_rx) = mpsc::channel(64);
    let window_chunks = (DATA_WINDOW as usize).div_ceil(DATA_CHUNK);
    for _ in 0..window_chunks + 4 {
        out_tx
            .send(Bytes::from(vec![1u8; DATA_CHUNK]))
            .await
            .unwrap();
    }
    let flow = Arc::new(Flow::default());
    let f = flow.clone();
    let writer = tokio::spawn(async move { write_loop(w, ctl_rx, out_rx, &lane, &f).await });
    for _ in 0..window_chunks {
        assert_eq!(chunk(&mut b).await.0, KIND_DATA);
    }
    // The window is used up: a control frame queued now is the next chunk.
    ctl_tx.send(Bytes::from_static(b"hb")).await.unwrap();
    assert_eq!(chunk(&mut b).await, (KIND_CONTROL, b"hb".to_vec()));
    // The peer reports what it took: the rest follows.
    flow.granted.store(DATA_WINDOW, Ordering::Release);
    flow.wake.notify_one();
    for _ in 0..4 {
        assert_eq!(chunk(&mut b).await.0, KIND_DATA);
    }
    drop(out_tx);
    writer.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_peer_that_sends_past_the_window_is_cut_off() {
    let mut stream = Vec::new();
    let body = vec![0u8; DATA_CHUNK];
    let n = (2 * DATA_WINDOW as usize + MAX_CHUNK) / DATA_CHUNK + 2;
    for _ in 0..n {
        stream.extend(chunk_header(KIND_DATA, DATA_CHUNK));
        stream.extend(&body);
    }
    // Nobody takes the data in (ractor's reader is stalled).
    let (tx, _rx) = mpsc::unbounded_channel();
    let handler: ControlHandler = Arc::new(|_, _| {});
    let err = read_loop(
        &stream[..],
        tx,
        &std::sync::Weak::new(),
        &handler,
        &Flow::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}

#[tokio::test]
async fn many_windows_of_data_pass_both_ways_with_credit() {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let noop: Arc<dyn Fn() + Send + Sync> = Arc::new(|| {});
    let handler: ControlHandler = Arc::new(|_, _| {});
    let (_la, mut ra, mut wa) = start("b".into(), ar, aw, handler.clone(), noop.clone());
    let (_lb, mut rb, mut wb) = start("a".into(), br, bw, handler, noop);
    let total = 5 * DATA_WINDOW as usize + 12_345;
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let (d1, d2) = (data.clone(), data.clone());
    let w1 = tokio::spawn(async move { wa.write_all(&d1).await.unwrap() });
    let w2 = tokio::spawn(async move { wb.write_all(&d2).await.unwrap() });
    let mut got_b = vec![0u8; total];
    let mut got_a = vec![0u8; total];
    let (x, y) = tokio::join!(rb.read_exact(&mut got_b), ra.read_exact(&mut got_a));
    x.unwrap();
    y.unwrap();
    w1.await.unwrap();
    w2.await.unwrap();
    assert!(got_b == data && got_a == data, "the bytes arrived intact");
}

#[tokio::test]
async fn a_writer_waiting_for_credit_ends_when_the_connection_closes() {
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let (ar, aw) = tokio::io::split(a);
    let ended = Arc::new(tokio::sync::Notify::new());
    let e = ended.clone();
    let (_lane, _r, mut w) = start(
        "p".into(),
        ar,
        aw,
        Arc::new(|_: &Lane, _| {}),
        Arc::new(move || e.notify_one()),
    );
    // A window goes out and as much again waits in the queue: the peer reads the window and
    // never grants credit.
    let writing = tokio::spawn(async move {
        w.write_all(&vec![0u8; 2 * DATA_WINDOW as usize])
            .await
            .unwrap();
        w
    });
    let mut got = 0usize;
    while got < DATA_WINDOW as usize {
        let (kind, body) = chunk(&mut b).await;
        assert_eq!(kind, KIND_DATA);
        got += body.len();
    }
    // The peer goes away: no credit can come, so the waiting writer ends (and cuts the
    // connection) instead of waiting for ever with the queued data.
    let w = writing.await.unwrap();
    drop(b);
    tokio::time::timeout(std::time::Duration::from_secs(10), ended.notified())
        .await
        .expect("the writer ended");
    drop(w);
}
