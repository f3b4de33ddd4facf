"""The web app: the engine the UI talks to, input images, pictures, and the Gradio interface."""
