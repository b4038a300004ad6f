"""CIMON (Luo et al., IJCAI 2021), unsupervised: two SimCLR views, similarity graph + confidence
weights + spectral-clustering mask, 4 semantic-consistency terms + eta * NT-Xent.

  python -m hashjax.main --config configs/cimon.py:quick --workdir /tmp/cimon_quick   # digits, ~1 min on CPU
  python -m hashjax.main --config configs/cimon.py --workdir runs/cimon                # Fashion-MNIST, 128 bits
  python -m hashjax.main --config configs/cimon.py:quick,graph=global --workdir /tmp/cimon_quick_global
  python -m hashjax.main --config configs/cimon.py:bits=64 --config.loss.threshold=0.2
  python -m hashjax.main --config configs/cimon.py:stl10 --workdir runs/cimon_stl10 \
      --config.model.pretrained=weights/vgg11_bn   # then: python -m hashjax.classify --workdir runs/cimon_stl10

Arguments: dataset (fashion_mnist | cifar10 | digits | ...), bits, quick, graph, backbone (e.g.
vgg16: the official network, at 224 px; add --config.model.pretrained=weights/vgg16), stl10.
stl10 is the per-batch student setting (reference/methods.md section 2): 20,000 random images of
STL-10's unlabelled split (protocol 'unlabelled'), VGG11-BN at the native 96 px with the head
ReLU -> Dropout(0.5) -> Linear(128) -> Tanh, graph=batch over batches of 256, 5 clusters,
threshold 0.3, tau 0.5, eta 0.3, 7 epochs; retrieval: test split vs the labelled train split, and
`python -m hashjax.classify` trains the classifier on the train split's codes. Needs
`python -m hashjax.prepare_data stl10` once and ImageNet weights (python -m hashjax.weights convert).
graph=batch (the default) builds the graph from each global batch inside the jitted step, with
the STL-10 per-batch variant's settings (batch 256, 5 clusters, threshold 0.3, 128 bits, tau 0.5,
eta 0.3; reference/methods.md section 2). graph=global is the official graph, built once before
training over the training set with numpy/scipy/sklearn (the 'cimon' protocol's 5,000 images,
70 clusters, threshold 0.1, batch 24, 150 epochs); batches carry its blocks.
Without backbone= the network is the DSH network trained from scratch, and the graph comes from a
fixed source, not from the random network (loss.graph_features='pca': the top 64 principal
components of the un-augmented training pixels; 'network' is the official route, the default
with a backbone); its features are centred per batch first (loss.center_features; see
cimon.similarity_graph).

quick (digits, 32 bits, 300 steps of 64): mAP 0.50 in ~45 s on a shared 2-core CPU (0.49 with
graph_features=network); for scale, the same network at initialisation gives 0.24, LSH on the
pixels 0.48, ITQ 0.64.
"""

from hashjax import config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, dataset='fashion_mnist', bits=128, quick=False, graph='batch',
                             backbone='', stl10=False)
  if arg.stl10:
    if arg.graph != 'batch' or arg.quick or arg.dataset != 'fashion_mnist':
      raise ValueError('stl10 is a complete setting: it takes only bits= and backbone=')
    arg.dataset, arg.backbone = 'stl10', arg.backbone or 'vgg11_bn'
  if arg.graph not in ('batch', 'global'):
    raise ValueError(f'unknown graph={arg.graph!r}; valid: batch, global')
  c = config_lib.base_config()
  c.method = 'cimon'
  c.bits = arg.bits
  c.dataset.name = arg.dataset
  c.dataset.protocol = 'full'
  c.loss.graph = arg.graph
  c.loss.threshold = 0.3      # cosine distance at or below which a pair is similar (S = +1)
  c.loss.num_clusters = 5     # spectral clusters per graph
  c.loss.gamma = 1.0          # RBF affinity exp(-gamma |x_i - x_j|^2) on unit features (sklearn's default)
  # Graph features (hashjax/methods/cimon_features.py): without pretrained weights a fixed source,
  # the top principal components of the training pixels; with a pretrained backbone the network.
  c.loss.graph_features = 'pca'
  c.loss.graph_pca_dim = 64
  c.loss.center_features = True  # subtract the batch mean before the graph (from-scratch nets; official: False)
  c.loss.eigen_solver = 'subspace'  # top-k subspace iteration; 'eigh' = dense (benchmarks/cimon_graph_pipeline.py)
  c.loss.kmeans_restarts = 10
  c.loss.kmeans_iters = 50
  c.loss.tau = 0.5            # NT-Xent temperature
  c.loss.eta = 0.3            # weight of NT-Xent
  c.model.name = 'dsh_net_tanh'
  c.model.width = 1.0
  # SimCLR's augmentations (the official CIFAR-10 recipe); they run on normalised images.
  c.augment = 'simclr'
  c.batch_size = 256
  c.num_epochs = 20
  # The official optimizer: SGD lr 1e-3, momentum 0.9, weight decay 1e-5, no schedule.
  c.optimizer.update(name='sgd', lr=1e-3, momentum=0.9, weight_decay=1e-5, schedule='constant')
  c.eval.every_steps = 0
  c.eval.topk = (1000,)
  c.checkpoint.every_steps = 1000
  if arg.backbone:
    # An ImageNet backbone (hashjax/models/backbones/) with the official head ReLU -> Linear -> Tanh,
    # at 224 px with ImageNet statistics; load weights with --config.model.pretrained=DIR
    # (python -m hashjax.weights convert). Pretrained fc7 features need no centring.
    c.model.name = arg.backbone
    c.model.head_activation = 'tanh'
    c.image_size = 224
    c.normalize = 'imagenet' if arg.dataset in ('cifar10', 'cifar100', 'stl10') else 'dataset'
    c.loss.center_features = False
    c.loss.graph_features = 'network'
  if arg.stl10:
    c.dataset.protocol = 'unlabelled'
    c.dataset.protocol_args.train_size = 20000
    c.image_size = 0            # native 96 x 96, as the student notebooks
    c.model.head_dropout = 0.5  # the student head; the official one has no dropout
    c.num_epochs = 7            # the student run's length
  if arg.graph == 'global':
    # The official run: 5,000 training images (500/class), threshold 0.1, 70 clusters, batch 24
    # (divisible by 8 devices), 150 epochs.
    c.dataset.protocol = 'cimon'
    c.loss.threshold = 0.1
    c.loss.num_clusters = 70
    c.batch_size = 24
    c.num_epochs = 150

  if arg.quick:
    c.dataset.name = 'digits' if arg.dataset == 'fashion_mnist' else arg.dataset
    c.bits = arg.bits if arg.bits != 128 else 32
    c.batch_size = 64
    c.num_epochs = 0
    c.num_steps = 300
    # SimCLR's crops (down to 20% of the area) leave too little of an 8x8 digit: on digits the
    # pad-and-crop augmentation gives the better graph and codes (mAP 0.58 vs 0.52 at 300 steps).
    c.augment = 'crop'
    # 8x8 digits are too small for three stride-2 poolings: upsample to 16x16 on the device.
    c.image_size = 16
    c.model.width = 0.5
    c.optimizer.update(name='adam', lr=1e-3, weight_decay=0.0, schedule='constant')
    c.log_every_steps = 25
    c.checkpoint.every_steps = 300
    if arg.graph == 'global':  # the whole digits training set (1,500 images) is the graph
      c.dataset.protocol = 'full'
      c.loss.threshold = 0.3
      c.loss.num_clusters = 20
    c.eval.topk = (100,)
    c.eval.pn = (10, 100)
  return c
