"""`vid2vid dream`: new motion for a trained person from a continuous-time motion model.

    dataset pose/ folders --dream.training--> motion.pt (dream.checkpoint)
    motion.pt + seed --dream.model.MotionGenerator.sample(times)--> BODY_25 poses
      --dream.pose_frame--> the trained person's frame --> pose folder + infer's rendering

Imports `vid2vid` and `infer`, never `train` or `preprocess` (DESIGN.md section 2).
"""
