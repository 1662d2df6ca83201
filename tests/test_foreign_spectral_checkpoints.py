"""Checkpoints of other spectral-norm code restore into spectral_norm_getter models.

The foreign checkpoints are written by plain TF1 code that mimics the naming
and shapes of taki0112's SN-GAN (``ops.spectral_norm``: ``scope/u`` of shape
``[1, out]`` beside ``scope/kernel``) and of TF-GAN's
``spectral_normalization_custom_getter`` (``scope/<kernel>/spectral_normalize/
spectral_norm/spectral_norm_u`` of shape ``[rows, 1]``). Each foreign model is
trained a few steps (its ``u`` refreshed by every forward pass), saved, and
run once more: that pass is what the restored tf1norm model must compute.
"""

import numpy as np
import pytest

import tf1norm
from tf1norm._src.compat import tf, v1

IMAGES = np.random.default_rng(5).normal(size=(8, 7, 7, 2)).astype(np.float32)
ROUNDOFF = 1e-6  # the same float32 ops in another order (l2_normalize vs tf1norm's scaled norm)


def gapped_kernel(shape, dtype=tf.float32, partition_info=None):
    """A fixed kernel whose largest singular value stands well apart (σ1 ≈ 3 σ2).

    Power iteration then converges in a few refreshes of ``u`` whatever ``u``
    starts from, so the tests do not depend on a lucky random kernel.
    """
    rng = np.random.default_rng(int(np.prod(shape)))
    rows, out = int(np.prod(shape[:-1])), shape[-1]
    left, right = rng.normal(size=rows), rng.normal(size=out)
    matrix = 0.1 * rng.normal(size=(rows, out)) + np.outer(left, right) / np.sqrt(rows * out)
    return tf.constant(matrix.reshape(shape), dtype)


def _l2n(x):
    return tf.nn.l2_normalize(x)


def sn_gan_spectral_norm(w):
    """taki0112's SN-GAN ``spectral_norm(w)``: ``u`` [1, out] in the kernel's scope."""
    shape = w.shape.as_list()
    w = tf.reshape(w, [-1, shape[-1]])
    u = v1.get_variable(
        "u", [1, shape[-1]], initializer=v1.random_normal_initializer(), trainable=False
    )
    v_hat = tf.stop_gradient(_l2n(tf.matmul(u, tf.transpose(w))))
    u_hat = tf.stop_gradient(_l2n(tf.matmul(v_hat, w)))
    sigma = tf.matmul(tf.matmul(v_hat, w), tf.transpose(u_hat))
    with tf.control_dependencies([u.assign(u_hat)]):
        return tf.reshape(w / sigma, shape)


def sn_gan_discriminator(x):
    """SN-GAN's ``conv`` and ``fully_connected`` with ``sn=True``: get_variable("kernel")."""
    with v1.variable_scope("discriminator"):
        with v1.variable_scope("conv_0"):
            kernel = v1.get_variable("kernel", [3, 3, 2, 4], initializer=gapped_kernel)
            bias = v1.get_variable("bias", [4], initializer=v1.zeros_initializer())
            x = tf.nn.conv2d(x, sn_gan_spectral_norm(kernel), [1, 2, 2, 1], "VALID") + bias
        x = tf.reshape(tf.nn.leaky_relu(x), [-1, 3 * 3 * 4])
        with v1.variable_scope("fc"):
            kernel = v1.get_variable("kernel", [36, 1], initializer=gapped_kernel)
            bias = v1.get_variable("bias", [1], initializer=v1.zeros_initializer())
            return tf.matmul(x, sn_gan_spectral_norm(kernel)) + bias


def tf_gan_getter(getter, name, *args, **kwargs):
    """TF-GAN's ``spectral_normalization_custom_getter`` (names, shapes, iteration)."""
    weight = getter(name, *args, **kwargs)
    if not name.endswith("kernel"):
        return weight
    with v1.variable_scope(name + "/spectral_normalize"), v1.variable_scope("spectral_norm"):
        w = tf.reshape(weight, [-1, weight.shape[-1]])
        u_var = v1.get_variable(
            "spectral_norm_u",
            [w.shape[0], 1],
            initializer=v1.random_normal_initializer(),
            trainable=False,
        )
        v = _l2n(tf.matmul(w, u_var, transpose_a=True))
        u = _l2n(tf.matmul(w, v))
        with tf.control_dependencies([u_var.assign(u)]):
            u = tf.identity(u)
        u, v = tf.stop_gradient(u), tf.stop_gradient(v)
        sigma = tf.matmul(tf.matmul(u, w, transpose_a=True), v)[0][0]
    return tf.reshape(w / sigma, weight.shape)


def tf1norm_discriminator(x, getter):
    layers = tf1norm.require_v1_layers()
    with v1.variable_scope("discriminator", custom_getter=getter):
        x = layers.conv2d(
            x, 4, 3, 2, activation=tf.nn.leaky_relu, kernel_initializer=gapped_kernel, name="conv_0"
        )
        return layers.dense(tf.reshape(x, [-1, 36]), 1, kernel_initializer=gapped_kernel, name="fc")


def _train_and_save(build, path, steps, passes=0):
    """Train the foreign model ``steps`` steps, run ``passes`` more forward passes (each
    refreshes ``u``, as a GAN's generator steps do), save; ``(stored values, next output)``."""
    with tf.Graph().as_default():
        v1.set_random_seed(11)
        out = build(tf.constant(IMAGES))
        train = v1.train.GradientDescentOptimizer(0.05).minimize(tf.reduce_mean(out))
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(steps):
                sess.run(train)
            for _ in range(passes):
                sess.run(out)
            v1.train.Saver().save(sess, path)
            stored = sess.run({v.op.name: v for v in v1.global_variables()})
            return stored, sess.run(out)


def _restore_and_run(path, names):
    """The tf1norm model restored from ``path``: ``(values, forward output, restored)``."""
    with tf.Graph().as_default():
        out = tf1norm_discriminator(tf.constant(IMAGES), tf1norm.spectral_norm_getter())
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            restored, _ = tf1norm.restore_plain_checkpoint(sess, path, spectral_norm_names=names)
            values = sess.run({v.op.name: v for v in v1.global_variables()})
            return values, sess.run(out), restored


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def sn_gan_model(x):
    return sn_gan_discriminator(x)


def tf_gan_model(x):
    with v1.variable_scope("", custom_getter=tf_gan_getter):
        return tf1norm_discriminator(x, None)


def test_sn_gan_checkpoint_restores_kernels_u_and_output(tmp_path):
    stored, foreign_out = _train_and_save(sn_gan_model, str(tmp_path / "sngan"), steps=3)
    values, out, restored = _restore_and_run(str(tmp_path / "sngan"), "sn_gan")
    for scope in ("discriminator/conv_0", "discriminator/fc"):
        np.testing.assert_array_equal(values[f"{scope}/kernel"], stored[f"{scope}/kernel"])
        np.testing.assert_array_equal(values[f"{scope}/kernel/sn_u"], stored[f"{scope}/u"])
        assert f"{scope}/kernel/sn_u" in restored
    assert _relative(out, foreign_out) <= ROUNDOFF


def test_tf_gan_checkpoint_restores_kernels_u_and_output(tmp_path):
    """TF-GAN's left vector becomes normalize(uᵀW); σ then agrees once u has converged.

    Straight after a training step the two σ are half a power iteration apart
    (measured 4.6e-5 relative in the output); 5 more refreshes of u (a GAN's
    generator steps refresh it too) bring that to 1e-7.
    """
    stored, foreign_out = _train_and_save(tf_gan_model, str(tmp_path / "tfgan"), 10, passes=10)
    values, out, _ = _restore_and_run(str(tmp_path / "tfgan"), "tf_gan")
    for scope in ("discriminator/conv_0", "discriminator/fc"):
        np.testing.assert_array_equal(values[f"{scope}/kernel"], stored[f"{scope}/kernel"])
        np.testing.assert_allclose(
            values[f"{scope}/kernel/sn_u"], _foreign_u(stored, scope, "tf_gan"), atol=1e-7
        )
    assert _relative(out, foreign_out) <= 1e-5  # measured 1e-7 to 2e-7


def test_explicit_name_dict(tmp_path):
    stored, foreign_out = _train_and_save(sn_gan_model, str(tmp_path / "sngan"), steps=2)
    names = {f"discriminator/{s}/kernel/sn_u": f"discriminator/{s}/u" for s in ("conv_0", "fc")}
    values, out, _ = _restore_and_run(str(tmp_path / "sngan"), names)
    np.testing.assert_array_equal(
        values["discriminator/fc/kernel/sn_u"], stored["discriminator/fc/u"]
    )
    assert _relative(out, foreign_out) <= ROUNDOFF


def test_unknown_name_map_names_the_choices(tmp_path):
    _train_and_save(sn_gan_model, str(tmp_path / "sngan"), steps=0)
    with pytest.raises(ValueError, match="'sn_gan', 'tf_gan'.*got 'pytorch'"):
        _restore_and_run(str(tmp_path / "sngan"), "pytorch")


def test_wrong_name_map_names_the_unfound_vectors(tmp_path):
    """An SN-GAN checkpoint read as TF-GAN's: every sn_u would stay random; it raises."""
    _train_and_save(sn_gan_model, str(tmp_path / "sngan"), steps=0)
    with pytest.raises(ValueError, match="holds no vector for .*discriminator/conv_0/kernel/sn_u"):
        _restore_and_run(str(tmp_path / "sngan"), "tf_gan")


def test_dict_naming_an_absent_variable_raises(tmp_path):
    _train_and_save(sn_gan_model, str(tmp_path / "sngan"), steps=0)
    with pytest.raises(ValueError, match="'discriminator/fc/v', which the checkpoint does not"):
        _restore_and_run(
            str(tmp_path / "sngan"), {"discriminator/fc/kernel/sn_u": "discriminator/fc/v"}
        )


def _foreign_u(stored, scope, names):
    """The foreign checkpoint's vector for ``scope/kernel``, as tf1norm's [1, out] ``sn_u``."""
    if names == "sn_gan":
        return stored[f"{scope}/u"]
    kernel = stored[f"{scope}/kernel"]
    left = stored[f"{scope}/{scope}/kernel/spectral_normalize/spectral_norm/spectral_norm_u"]
    right = left.T.astype(np.float64) @ kernel.reshape(-1, kernel.shape[-1])
    return right / np.linalg.norm(right)


@pytest.mark.parametrize("names", ["sn_gan", "tf_gan"])
def test_convert_checkpoint_cli_writes_sn_u(tmp_path, capsys, names):
    """``convert-checkpoint --spectral-norm-names``: the vectors under tf1norm's names."""
    from tf1norm.cli import app as cli

    model = sn_gan_model if names == "sn_gan" else tf_gan_model
    stored, _ = _train_and_save(model, str(tmp_path / "foreign"), steps=1)
    out = str(tmp_path / "tf2" / "model")
    args = ["convert-checkpoint", str(tmp_path / "foreign"), out, "--spectral-norm-names", names]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "discriminator/fc/kernel/sn_u" in printed
    assert "spectral_norm_u" not in printed and "discriminator/fc/u\n" not in printed
    scope = "discriminator/conv_0"
    variables = {
        f"{scope}/kernel/sn_u": tf.Variable(tf.zeros([1, 4])),
        f"{scope}/kernel": tf.Variable(tf.zeros([3, 3, 2, 4])),
    }
    tf.train.Checkpoint(variables=variables).read(out).expect_partial()
    np.testing.assert_array_equal(variables[f"{scope}/kernel"], stored[f"{scope}/kernel"])
    np.testing.assert_allclose(
        variables[f"{scope}/kernel/sn_u"], _foreign_u(stored, scope, names), atol=1e-7
    )


def test_convert_checkpoint_cli_rejects_an_unknown_map(tmp_path, capsys):
    from tf1norm.cli import app as cli

    assert cli.main(["convert-checkpoint", "a", "b", "--spectral-norm-names", "sonnet"]) == 2
    assert "sn_gan" in capsys.readouterr().err
