"""DLBHC (Lin et al., CVPRW 2015): backbone -> latent layer of `bits` sigmoid units -> softmax
classifier, trained by cross-entropy; codes = (latent >= 0.5); coarse-to-fine retrieval re-ranks
Hamming candidates by the backbone features.

  python -m hashjax.main --config configs/dlbhc.py:quick --workdir /tmp/dlbhc_quick     # digits, ~20 s on CPU
  python -m hashjax.main --config configs/dlbhc.py:backbone=resnet18,bits=48 --config.batch_size=150 --workdir runs/dlbhc
  python -m hashjax.main --config configs/dlbhc.py:fashion_mnist --workdir runs/dlbhc_fmnist   # random-init ResNet18, 32 px
  python -m hashjax.retrieve --workdir runs/dlbhc --per_class 100    # mAP@1000, P@k: Hamming and coarse-to-fine

Arguments: backbone (alexnet | vgg_f | vgg16 | vgg19 | resnet18 | googlenet | ...: models
`dlbhc_<backbone>`), bits, dataset (default cifar10, as the seed; a dataset of the papers gets its
protocol and mAP cut-off, common.PAPER_PROTOCOLS), protocol (a PAPER_PROTOCOLS name), quick,
fashion_mnist, features (model `dlbhc_mlp` on precomputed feature vectors,
`--config.dataset.data_dir=DIR`: the MLP hidden layers of common.use_features play fc7, then
dropout 0.5, the latent layer and the classifier; Adam 1e-3, 20 epochs).
Defaults as the seed (a DLBHC re-implementation over five backbones): SGD lr 0.01, momentum 0.9,
weight decay 5e-4, 50 epochs, batch 200 (its largest; ResNet18 fit 150), 48 bits, training images
resized to 256 then randomly cropped to 227 and mirrored, test images resized to 227, normalised
with the training set's mean and std; query = the test split, database = the training split.
ImageNet weights (the paper fine-tunes them) are required: --config.model.pretrained=weights/<backbone>
(python -m hashjax.weights convert), usually with --config.normalize=imagenet for RGB data; without
them the run stops at validation naming that command (--config.model.pretrained=none: random
initialisation on purpose). fashion_mnist and quick train from scratch and need none.
The official/FP recipe trains the new layers at lr 0.01 and the pretrained ones at 0.001:
--config.optimizer.lr_multipliers='model/backbone/=0.1' (new layers: model/head = the latent
layer, model/classifier; hashjax/train/optim.py).
quick (digits, DSH network at half width, 16 bits, 300 SGD steps of 64 at lr 0.1): mAP 0.93 in
~20 s on a shared 2-core CPU. fashion_mnist results: BENCHMARKS.md, "DLBHC".
"""

from hashjax.config import common


def get_config(arg=None):
  arg = common.parse_arg(
    arg, backbone='resnet18', bits=48, dataset='', protocol='', quick=False, fashion_mnist=False, features=False
  )
  c = common.base_config()
  c.method = 'dlbhc'
  c.bits = arg.bits
  c.dataset.protocol = 'full'
  dataset = 'fashion_mnist' if arg.fashion_mnist else arg.dataset or common.protocol_dataset(arg.protocol) or 'cifar10'
  common.use_protocol(c, dataset, arg.protocol)  # a dataset of the papers: its protocol and mAP cut-off
  # The seed's mAP over the top 1000 (base_config's eval.topk); the mAP@all settings keep it beside mAP@all.
  c.eval.topk = c.eval.topk or (1000,)
  c.model.name = f'dlbhc_{arg.backbone}'
  # The paper fine-tunes ImageNet weights: required, except in the from-scratch fashion_mnist and quick settings.
  c.model.requires_pretrained = not (arg.fashion_mnist or arg.quick)
  c.model.head_dropout = 0.5  # dropout on fc7 before the latent layer (CaffeNet's drop7)
  c.image_size = 227
  c.augment = 'resize_crop_flip'
  c.normalize = 'dataset'
  c.batch_size = 200
  c.num_epochs = 50
  c.optimizer.update(name='sgd', lr=0.01, momentum=0.9, weight_decay=5e-4, schedule='constant')
  c.eval.every_steps = 0
  c.eval.pn = (10, 100, 500, 1000)
  c.checkpoint.every_steps = 1000

  if arg.fashion_mnist:
    # No ImageNet weights offline: a randomly initialised ResNet18 on 28x28 greyscale, upsampled
    # to 32 px (the smallest size the 5 stride-2 stages leave a 1x1 map at; 227 px would cost
    # ~50x the compute on CPU) with the seed's resize-crop-mirror at that scale (32 -> 36 -> 32).
    c.image_size = 32
  if arg.quick:
    # The small DSH network (its fc1 plays fc7) on the embedded digits, upsampled to 16x16.
    if dataset == 'cifar10' and not arg.protocol:
      c.dataset.name, c.dataset.protocol = 'digits', 'full'
    c.model = common.base_config().model
    c.model.name = 'dlbhc_dsh_net'
    c.model.width = 0.5
    c.bits = arg.bits if arg.bits != 48 else 16
    c.image_size = 16
    c.augment = 'none'  # mirrored digits are other digits; crops leave too little of an 8x8 image
    c.batch_size = 64
    c.num_epochs = 0
    c.num_steps = 300
    # SGD at the seed's lr 0.01 is still near chance after 300 steps here (mAP 0.30); 0.1: 0.93.
    c.optimizer.lr = 0.1
    c.log_every_steps = 25
    c.checkpoint.every_steps = 300
    c.eval.topk = (100,)
    c.eval.pn = (10, 100)
  if arg.features:
    if arg.fashion_mnist:
      raise ValueError('fashion_mnist trains a ResNet18 on images; features an MLP on feature vectors: pick one')
    common.use_features(c)
    del c.model['head_activation']  # fixed for DLBHC: sigmoid latent units
    c.model.name = 'dlbhc_mlp'
    c.model.head_dropout = 0.5  # on fc7 (the last hidden layer) before the latent layer, as drop7
    c.eval.topk = c.eval.topk or (1000,)
    if arg.quick:
      c.batch_size, c.num_epochs, c.num_steps = 64, 0, 300
  c.model.num_classes = 0  # the classifier's width; 0: the dataset's class count
  return c
