//! Running several database calls at once: a sharded namespace asks its shards in parallel
//! (S4, S5, S7), and the edge cache looks up many keys together.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Runs `futures` together on the current task and returns their outputs in order.
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    if futures.len() == 1 {
        let mut outputs = Vec::with_capacity(1);
        for future in futures {
            outputs.push(future.await);
        }
        return outputs;
    }
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => done = false,
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
