"""The web app: the Gradio page (a module per tab), the presenter that turns the service's answers
into component values, pictures, links and state."""
