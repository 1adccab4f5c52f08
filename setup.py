from setuptools import find_packages, setup

setup(
    name="allennlp-lpt",
    version="0.1.0",
    description="Late Prompt Tuning (Findings of EMNLP 2022) as AllenNLP components",
    packages=find_packages(include=["allennlp_lpt", "allennlp_lpt.*"]),
    package_data={"allennlp_lpt": ["py.typed"]},
    python_requires=">=3.10",
    # allennlp itself is installed with --no-deps (see Makefile): its metadata pins torch<1.13.
    install_requires=["torch>=2.0", "transformers==4.43.4", "accelerate==1.2.1", "peft==0.15.2"],
)
